package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// kubernetesPartitions is the partition count (and StatefulSet replicas) of
// kubernetes/invoicer.yaml.
const kubernetesPartitions = 3

// A variant is one deployment's topology, written to streams/<dir>.
type variant struct {
	dir  string
	topo pipeline.Topology
}

var variants = []variant{
	{"single", pipeline.Topology{}},                                                  // nats-server.conf, one consumer
	{"cluster", pipeline.Topology{Replicas: 3}},                                      // cluster/, one consumer with --replicas 3
	{"kubernetes", pipeline.Topology{Replicas: 3, Partitions: kubernetesPartitions}}, // kubernetes/, a StatefulSet of 3 partitions
}

// definition is one generated file: a stream, or a consumer of the request
// stream.
type definition struct {
	path     string
	stream   *jetstream.StreamConfig
	consumer *jetstream.ConsumerConfig
}

func (d definition) value() any {
	if d.stream != nil {
		return d.stream
	}
	return d.consumer
}

// settings are the request consumer's settings with the binary's default
// flags (--workers, --ack-wait).
func settings(partition int) pipeline.ConsumerSettings {
	return pipeline.ConsumerSettings{Partition: partition, Workers: pipeline.DefaultWorkers, AckWait: pipeline.DefaultAckWait}
}

// definitions returns what pipeline.Topology produces for every variant.
func definitions(v variant) []definition {
	var out []definition
	for _, s := range v.topo.Streams() {
		s := s
		out = append(out, definition{path: filepath.Join("streams", v.dir, s.Name+".json"), stream: &s})
	}
	partitions := []int{0}
	if v.topo.Partitions > 1 {
		partitions = nil
		for k := range v.topo.Partitions {
			partitions = append(partitions, k)
		}
	}
	for _, k := range partitions {
		c := v.topo.Consumer(settings(k))
		out = append(out, definition{path: filepath.Join("streams", v.dir, "consumer-"+c.Durable+".json"), consumer: &c})
	}
	return out
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestStreamDefinitions compares streams/ with what pipeline.Topology
// produces; go test -run TestStreamDefinitions -update rewrites them.
func TestStreamDefinitions(t *testing.T) {
	var all []string
	for _, v := range variants {
		for _, d := range definitions(v) {
			all = append(all, d.path)
			want := encode(t, d.value())
			if *update {
				if err := os.MkdirAll(filepath.Dir(d.path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(d.path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(d.path)
			if err != nil {
				t.Errorf("%v (run go test ./deploy -run TestStreamDefinitions -update)", err)
				continue
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from pipeline.Topology (run go test ./deploy -run TestStreamDefinitions -update):\n--- file\n%s\n--- Topology\n%s", d.path, got, want)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join("streams", "*", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !slices.Contains(all, f) {
			if *update {
				_ = os.Remove(f)
				continue
			}
			t.Errorf("%s is not produced by pipeline.Topology any more: remove it (or run -update)", f)
		}
	}
}

// TestStreamDefinitionFields decodes every file into the server's own
// StreamConfig and ConsumerConfig, refusing unknown fields and unknown enum
// values ("workqueue", "explicit", ...): the names the nats CLI and the
// server read.
func TestStreamDefinitionFields(t *testing.T) {
	for _, v := range variants {
		for _, d := range definitions(v) {
			t.Run(d.path, func(t *testing.T) {
				data, err := os.ReadFile(d.path)
				if err != nil {
					t.Fatal(err)
				}
				dec := json.NewDecoder(bytes.NewReader(data))
				dec.DisallowUnknownFields()
				if d.stream != nil {
					var sc server.StreamConfig
					if err := dec.Decode(&sc); err != nil {
						t.Fatalf("not a server StreamConfig: %v", err)
					}
					checkStream(t, sc, *d.stream, v.topo)
					return
				}
				var cc server.ConsumerConfig
				if err := dec.Decode(&cc); err != nil {
					t.Fatalf("not a server ConsumerConfig: %v", err)
				}
				if cc.Durable != d.consumer.Durable || cc.AckPolicy != server.AckExplicit || cc.DeliverPolicy != server.DeliverAll ||
					cc.FilterSubject != d.consumer.FilterSubject || cc.MaxDeliver != -1 || cc.AckWait != pipeline.DefaultAckWait ||
					cc.Replicas != v.topo.WithDefaults().Replicas {
					t.Errorf("consumer as the server reads it: %+v", cc)
				}
			})
		}
	}
}

// checkStream checks what the server reads of a stream file against the
// topology's intent.
func checkStream(t *testing.T, sc server.StreamConfig, want jetstream.StreamConfig, topo pipeline.Topology) {
	t.Helper()
	topo = topo.WithDefaults()
	wantRetention := server.LimitsPolicy
	if want.Name == pipeline.DefaultRequestStream {
		wantRetention = server.WorkQueuePolicy
	}
	if sc.Name != want.Name || !slices.Equal(sc.Subjects, want.Subjects) || sc.Retention != wantRetention ||
		sc.Storage != server.FileStorage || sc.Replicas != topo.Replicas || sc.Duplicates != topo.Duplicates ||
		sc.MaxAge != want.MaxAge || sc.Discard != server.DiscardOld {
		t.Errorf("stream as the server reads it: %+v", sc)
	}
	switch {
	case want.SubjectTransform == nil && sc.SubjectTransform != nil:
		t.Errorf("unexpected subject_transform %+v", sc.SubjectTransform)
	case want.SubjectTransform != nil && (sc.SubjectTransform == nil ||
		sc.SubjectTransform.Destination != "invoice.request.{{wildcard(1)}}.{{partition("+strconv.Itoa(topo.Partitions)+",1)}}"):
		t.Errorf("subject_transform %+v, want the partition transform", sc.SubjectTransform)
	}
}

// TestStreamDefinitionsApply sends every variant's files to a real
// three-node cluster as `nats stream add --config` and `nats consumer add
// --config` do, then runs the consumer's own Topology.Ensure and
// EnsureConsumer over them: the configurations must come out unchanged.
func TestStreamDefinitionsApply(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	nc := plainCluster(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range variants {
		t.Run(v.dir, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// Start clean even if an earlier variant failed half-way.
			for _, name := range []string{pipeline.DefaultRequestStream, pipeline.DefaultResultStream, pipeline.DefaultDeadLetterStream} {
				if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
					t.Fatalf("delete %s: %v", name, err)
				}
			}
			var streams []jetstream.StreamConfig
			var consumers []jetstream.ConsumerConfig
			for _, d := range definitions(v) {
				data, err := os.ReadFile(d.path)
				if err != nil {
					t.Fatal(err)
				}
				if d.stream != nil {
					apiRequest(t, nc, "$JS.API.STREAM.CREATE."+d.stream.Name, data)
					s, err := js.Stream(ctx, d.stream.Name)
					if err != nil {
						t.Fatal(err)
					}
					streams = append(streams, s.CachedInfo().Config)
					continue
				}
				req := fmt.Appendf(nil, `{"stream_name":%q,"config":%s}`, pipeline.DefaultRequestStream, data)
				apiRequest(t, nc, "$JS.API.CONSUMER.CREATE."+pipeline.DefaultRequestStream+"."+d.consumer.Durable, req)
				c, err := js.Consumer(ctx, pipeline.DefaultRequestStream, d.consumer.Durable)
				if err != nil {
					t.Fatal(err)
				}
				consumers = append(consumers, c.CachedInfo().Config)
			}
			if err := v.topo.Ensure(ctx, js); err != nil {
				t.Fatalf("Ensure over the files' streams: %v", err)
			}
			for _, before := range streams {
				s, err := js.Stream(ctx, before.Name)
				if err != nil {
					t.Fatal(err)
				}
				if after := s.CachedInfo().Config; !reflect.DeepEqual(before, after) {
					t.Errorf("%s: Ensure changed the stream the file created:\n file:   %+v\n Ensure: %+v", before.Name, before, after)
				}
			}
			for i, before := range consumers {
				c, err := v.topo.EnsureConsumer(ctx, js, settings(i))
				if err != nil {
					t.Fatalf("EnsureConsumer over %s: %v", before.Durable, err)
				}
				if after := c.CachedInfo().Config; !reflect.DeepEqual(before, after) {
					t.Errorf("%s: EnsureConsumer changed the consumer the file created:\n file:   %+v\n Ensure: %+v", before.Durable, before, after)
				}
			}
			for _, s := range streams {
				if err := js.DeleteStream(ctx, s.Name); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// apiRequest sends a JetStream API request and fails on an error answer.
// A request without an answer in time, or refused for want of peers (a
// loaded machine makes a node look offline for a moment), is sent again, at
// most five times: creating a stream or a consumer with the same
// configuration again is not an error.
func apiRequest(t *testing.T, nc *nats.Conn, subject string, body []byte) {
	t.Helper()
	const noPeers = 10005 // JSClusterNoPeersErr
	var last string
	for range 5 {
		m, err := nc.Request(subject, body, 20*time.Second)
		if errors.Is(err, nats.ErrTimeout) {
			last = err.Error()
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		var resp struct {
			Error *struct {
				Code        int    `json:"code"`
				ErrCode     int    `json:"err_code"`
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(m.Data, &resp); err != nil {
			t.Fatalf("%s: %v: %s", subject, err, m.Data)
		}
		switch {
		case resp.Error == nil:
			return
		case resp.Error.ErrCode == noPeers:
			last = resp.Error.Description
			time.Sleep(time.Second)
			continue
		}
		t.Fatalf("%s: %d %s", subject, resp.Error.Code, resp.Error.Description)
	}
	t.Fatalf("%s: %s, five times", subject, last)
}

// plainCluster starts three JetStream servers in process without
// authentication (this test is about the definition files, not the
// permissions) and returns a connection once they are healthy.
func plainCluster(t *testing.T) *nats.Conn {
	t.Helper()
	var routes []string
	var ports []int
	for range 3 {
		a := freeAddr(t)
		routes = append(routes, "nats://"+a)
		p, _ := strconv.Atoi(a[strings.LastIndexByte(a, ':')+1:])
		ports = append(ports, p)
	}
	var servers []*server.Server
	for i := range 3 {
		ns, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("p%d", i+1), Host: "127.0.0.1", Port: -1, NoSigs: true,
			JetStream: true, StoreDir: t.TempDir(),
			Cluster: server.ClusterOpts{Name: "definitions", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		t.Cleanup(func() {
			ns.Shutdown()
			ns.WaitForShutdown()
		})
		servers = append(servers, ns)
	}
	for _, ns := range servers {
		if !ns.ReadyForConnections(15 * time.Second) {
			t.Fatal("cluster node not ready")
		}
	}
	waitFor(t, 60*time.Second, "definitions cluster healthy", func() (bool, string) {
		for _, ns := range servers {
			if h := ns.Healthz(nil); h.Status != "ok" {
				return false, ns.Name() + ": " + h.Error
			}
		}
		return true, ""
	})
	nc, err := nats.Connect(servers[0].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
