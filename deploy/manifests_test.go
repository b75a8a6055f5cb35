package deploy_test

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"go.yaml.in/yaml/v3"
)

// shutdownMargin is how long after its --shutdown-timeout the consumer
// exits at the latest, whatever its shutdown still waits for (cmd/consumer's
// shutdownMargin): a unit's or a pod's grace period must cover both.
const shutdownMargin = 10 * time.Second

// consumerSettings returns the flags and the environment variables the
// consumer binary accepts, read from its -h.
func consumerSettings(t *testing.T) (flags, env map[string]bool) {
	t.Helper()
	out, err := exec.Command(bins(t).consumer, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("consumer -h: %v\n%s", err, out)
	}
	flags, env = map[string]bool{}, map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`\((?:INVOICE|NATS)_[A-Z0-9_]+`).FindAllString(string(out), -1) {
		env[m[1:]] = true
	}
	if !flags["partition-from-hostname"] || !env["NATS_URL"] || !env["INVOICE_CONFIG"] {
		t.Fatalf("cannot read the consumer's settings from -h:\n%s", out)
	}
	return flags, env
}

// flagArgs returns the flag names of "--name", "--name=value" and
// "-name value" arguments.
func flagArgs(args []string) []string {
	var out []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			out = append(out, name)
		}
	}
	return out
}

// k8sObject is the part of a Kubernetes object the checks read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		ClusterIP   string `yaml:"clusterIP"`
		ServiceName string `yaml:"serviceName"`
		Replicas    int    `yaml:"replicas"`
		// Selector is a Service's labels (a StatefulSet's matchLabels
		// under its own key).
		Selector map[string]any `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
				Containers                    []struct {
					Args           []string           `yaml:"args"`
					StartupProbe   *k8sProbe          `yaml:"startupProbe"`
					ReadinessProbe *k8sProbe          `yaml:"readinessProbe"`
					LivenessProbe  *k8sProbe          `yaml:"livenessProbe"`
					Env            []k8sEnv           `yaml:"env"`
					Ports          []k8sContainerPort `yaml:"ports"`
					VolumeMounts   []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

// k8sEnv is a container's environment variable.
type k8sEnv struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// k8sContainerPort is a container's port.
type k8sContainerPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

// k8sProbe is a container probe of a Kubernetes manifest.
type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

// allows is how long the probe lets the container fail before acting:
// Kubernetes' defaults are a period of 10 s and 3 failures.
func (p *k8sProbe) allows() time.Duration {
	period, failures := cmp.Or(p.PeriodSeconds, 10), cmp.Or(p.FailureThreshold, 3)
	return time.Duration(period*failures) * time.Second
}

// TestKubernetesManifest checks kubernetes/invoicer.yaml: a StatefulSet
// behind a headless Service, one pod per partition (the partitions of
// streams/kubernetes), the partition from the host name, a volume claim per
// pod holding --data, and only flags and variables the consumer knows; the
// partner API on a listener of its own (INVOICE_PARTNER_HTTP) behind a
// Service of its own that exposes it alone (README.md, "HTTP"), each named
// port the port its listener is given.
func TestKubernetesManifest(t *testing.T) {
	flags, env := consumerSettings(t)
	data, err := os.ReadFile("kubernetes/invoicer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]k8sObject{} // by kind, Services by "Service/" and name
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var o k8sObject
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		key := o.Kind
		if o.Kind == "Service" {
			key += "/" + o.Metadata.Name
		}
		if _, dup := objs[key]; dup {
			t.Fatalf("two objects %s", key)
		}
		objs[key] = o
	}
	sts := objs["StatefulSet"]
	svc := objs["Service/"+sts.Spec.ServiceName]
	if sts.Kind == "" || svc.Kind == "" || objs["PodDisruptionBudget"].Kind == "" {
		t.Fatalf("want a Service, a StatefulSet and a PodDisruptionBudget, got %v", objs)
	}
	if sts.Spec.ServiceName != svc.Metadata.Name || svc.Spec.ClusterIP != "None" {
		t.Errorf("StatefulSet serviceName %q, Service %q clusterIP %q: want a headless service of that name", sts.Spec.ServiceName, svc.Metadata.Name, svc.Spec.ClusterIP)
	}
	if len(sts.Spec.Template.Spec.Containers) != 1 {
		t.Fatal("want one container")
	}
	c := sts.Spec.Template.Spec.Containers[0]
	values := map[string]string{}
	for _, a := range c.Args {
		name, value, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		values[name] = value
	}
	for _, name := range flagArgs(c.Args) {
		if !flags[name] {
			t.Errorf("--%s is not a consumer flag", name)
		}
	}
	if _, ok := values["partition-from-hostname"]; !ok {
		t.Error("no --partition-from-hostname")
	}
	if p, _ := strconv.Atoi(values["partitions"]); p != kubernetesPartitions || sts.Spec.Replicas != kubernetesPartitions {
		t.Errorf("--partitions %q and %d replicas: want %d of each (streams/kubernetes)", values["partitions"], sts.Spec.Replicas, kubernetesPartitions)
	}
	if values["replicas"] != "3" {
		t.Errorf("--replicas %q: the NATS cluster of nats-values.yaml has 3 nodes", values["replicas"])
	}
	if d, err := time.ParseDuration(values["shutdown-timeout"]); err != nil || time.Duration(sts.Spec.Template.Spec.TerminationGracePeriodSeconds)*time.Second <= d+shutdownMargin {
		t.Errorf("terminationGracePeriodSeconds %d must exceed --shutdown-timeout %q and the %v by which the consumer exits after it", sts.Spec.Template.Spec.TerminationGracePeriodSeconds, values["shutdown-timeout"], shutdownMargin)
	}
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatal("want one volumeClaimTemplate")
	}
	claim := sts.Spec.VolumeClaimTemplates[0].Metadata.Name
	mounted := false
	for _, m := range c.VolumeMounts {
		mounted = mounted || (m.Name == claim && m.MountPath == values["data"])
	}
	if !mounted {
		t.Errorf("volume claim %q is not mounted at --data %q", claim, values["data"])
	}
	// Variables are the consumer's, or referenced as $(NAME) by another.
	var names []string
	refs := ""
	for _, e := range c.Env {
		names = append(names, e.Name)
		refs += e.Value
	}
	for _, n := range names {
		if !env[n] && !strings.Contains(refs, "$("+n+")") {
			t.Errorf("env %s is neither a consumer setting nor used by another variable", n)
		}
	}
	if !slices.Contains(names, "NATS_URL") {
		t.Error("no NATS_URL")
	}
	checkKubernetesListeners(t, objs, c.Ports, values, c.Env)
	// HTTP is served only once the consumer has started, which may take
	// pipeline.SetupTimeout and then pipeline.RecoverTimeout: the liveness
	// probe must not kill the pod before that.
	probes := map[string]*k8sProbe{"startupProbe": c.StartupProbe, "readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe}
	for name, want := range map[string]string{"startupProbe": "/healthz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"} {
		p := probes[name]
		if p == nil {
			t.Errorf("no %s", name)
			continue
		}
		if p.HTTPGet.Path != want || p.HTTPGet.Port != "http" {
			t.Errorf("%s gets %s on port %q, want %s on the port named http", name, p.HTTPGet.Path, p.HTTPGet.Port, want)
		}
	}
	if p := c.StartupProbe; p != nil {
		if start := pipeline.SetupTimeout + pipeline.RecoverTimeout; p.allows() < start+10*time.Second {
			t.Errorf("the startupProbe allows %s, want at least the consumer's start-up bound %s and 10 s for the order store's lock and the NATS connection", p.allows(), start)
		}
	}
}

// checkKubernetesListeners checks that --http and the partner API's
// listener (INVOICE_PARTNER_HTTP, or --partner-http) listen on the pod's
// every address, each on the container port named for it (http, partner),
// and that the headless Service exposes http alone and a Service of the
// pods' exposes partner alone, for the partners.
func checkKubernetesListeners(t *testing.T, objs map[string]k8sObject, ports []k8sContainerPort, values map[string]string, env []k8sEnv) {
	t.Helper()
	sts := objs["StatefulSet"]
	listen := map[string]string{"http": values["http"], "partner": values["partner-http"]}
	for _, e := range env {
		if e.Name == "INVOICE_PARTNER_HTTP" {
			if listen["partner"] != "" {
				t.Errorf("--partner-http %q and INVOICE_PARTNER_HTTP %q both given: the flag wins, say it once", listen["partner"], e.Value)
			}
			listen["partner"] = e.Value
		}
	}
	for name, addr := range listen {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || (host != "" && !net.ParseIP(host).IsUnspecified()) {
			t.Errorf("the %s listener %q: want one on every address of the pod (0.0.0.0:PORT), which probes and Services reach", name, addr)
			continue
		}
		var named []int
		for _, p := range ports {
			if p.Name == name {
				named = append(named, p.ContainerPort)
			}
		}
		if len(named) != 1 || strconv.Itoa(named[0]) != port {
			t.Errorf("the %s listener %q: container ports named %s %v, want one, %s", name, addr, name, named, port)
		}
	}
	if listen["http"] != "" && listen["http"] == listen["partner"] {
		t.Errorf("--http and the partner API both on %s", listen["http"])
	}
	// The headless Service: the pods' names and Prometheus's targets,
	// http alone; the partners' Service: partner alone.
	exposes := func(svc k8sObject) []string {
		var out []string
		for _, p := range svc.Spec.Ports {
			out = append(out, p.TargetPort)
		}
		return out
	}
	if got := exposes(objs["Service/"+sts.Spec.ServiceName]); !slices.Equal(got, []string{"http"}) {
		t.Errorf("the headless Service exposes %q, want the port named http alone", got)
	}
	partners := 0
	for key, svc := range objs {
		if !strings.HasPrefix(key, "Service/") || svc.Metadata.Name == sts.Spec.ServiceName || !slices.Equal(exposes(svc), []string{"partner"}) {
			continue
		}
		partners++
		if len(svc.Spec.Selector) == 0 {
			t.Errorf("Service %s selects no pods", svc.Metadata.Name)
		}
		for k, v := range svc.Spec.Selector {
			if sts.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("Service %s selects %s=%v, which the pods are not labelled", svc.Metadata.Name, k, v)
			}
		}
		if svc.Spec.ClusterIP == "None" {
			t.Errorf("Service %s is headless: the partners' Service balances over the ready pods", svc.Metadata.Name)
		}
	}
	if partners != 1 {
		t.Errorf("%d Services expose the port named partner alone, want one", partners)
	}
}

// TestHelmValues checks kubernetes/nats-values.yaml: a JetStream cluster of
// three, accounts.conf included, and every password variable accounts.conf
// reads set from a Secret.
func TestHelmValues(t *testing.T) {
	data, err := os.ReadFile("kubernetes/nats-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Config struct {
			Cluster struct {
				Enabled  bool `yaml:"enabled"`
				Replicas int  `yaml:"replicas"`
			} `yaml:"cluster"`
			JetStream struct {
				Enabled   bool `yaml:"enabled"`
				FileStore struct {
					Enabled bool `yaml:"enabled"`
				} `yaml:"fileStore"`
			} `yaml:"jetstream"`
			Merge map[string]any `yaml:"merge"`
		} `yaml:"config"`
		Container struct {
			Env map[string]struct {
				ValueFrom struct {
					SecretKeyRef struct {
						Name string `yaml:"name"`
						Key  string `yaml:"key"`
					} `yaml:"secretKeyRef"`
				} `yaml:"valueFrom"`
			} `yaml:"env"`
		} `yaml:"container"`
	}
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if !v.Config.Cluster.Enabled || v.Config.Cluster.Replicas != 3 || !v.Config.JetStream.Enabled || !v.Config.JetStream.FileStore.Enabled {
		t.Errorf("want a JetStream cluster of 3 on file storage: %+v", v.Config)
	}
	included := false
	for k, val := range v.Config.Merge {
		included = included || (strings.HasSuffix(k, "$include") && val == "accounts.conf")
	}
	if !included {
		t.Errorf("config.merge does not include accounts.conf: %v", v.Config.Merge)
	}
	for _, name := range accountVariables(t) {
		e, ok := v.Container.Env[name]
		if !ok || e.ValueFrom.SecretKeyRef.Name == "" || e.ValueFrom.SecretKeyRef.Key == "" {
			t.Errorf("container.env sets no %s from a Secret", name)
		}
	}
}

// accountVariables returns the environment variables accounts.conf reads.
func accountVariables(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("accounts.conf")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	re := regexp.MustCompile(`password:\s*\$([A-Z0-9_]+)`)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		for _, m := range re.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
	}
	var roles []string
	for _, r := range allRoles {
		roles = append(roles, r.env)
	}
	if !slices.Equal(out, roles) {
		t.Fatalf("accounts.conf reads %v, the tests set %v", out, roles)
	}
	return out
}

// TestSystemdUnits checks the units and example environment files: the
// consumer's flags and variables exist, its stop timeout covers its
// shutdown timeout, and the server's example sets exactly the variables
// accounts.conf reads.
func TestSystemdUnits(t *testing.T) {
	flags, env := consumerSettings(t)
	unit := readUnit(t, "systemd/invoicer-consumer@.service")
	cmdline := strings.Fields(unit["ExecStart"])
	if len(cmdline) == 0 || !strings.HasSuffix(cmdline[0], "invoicer-consumer") {
		t.Fatalf("ExecStart %q", unit["ExecStart"])
	}
	for _, name := range flagArgs(cmdline[1:]) {
		if !flags[name] {
			t.Errorf("ExecStart: --%s is not a consumer flag", name)
		}
	}
	if stop, err := time.ParseDuration(unit["TimeoutStopSec"] + "s"); err != nil || stop <= 30*time.Second+shutdownMargin {
		t.Errorf("TimeoutStopSec %q must exceed the consumer's --shutdown-timeout (30s) and the %v by which it exits after it", unit["TimeoutStopSec"], shutdownMargin)
	}
	if unit["KillSignal"] != "SIGTERM" {
		t.Errorf("KillSignal %q: the consumer shuts down gracefully on SIGTERM", unit["KillSignal"])
	}
	for name := range readEnvFile(t, "systemd/consumer.env.example") {
		if !env[name] {
			t.Errorf("consumer.env.example: %s is not a consumer setting", name)
		}
	}

	nats := readUnit(t, "systemd/nats-server.service")
	if !strings.Contains(nats["ExecStart"], "-c /etc/nats/nats-server.conf") || nats["EnvironmentFile"] == "" {
		t.Errorf("nats-server.service: ExecStart %q, EnvironmentFile %q", nats["ExecStart"], nats["EnvironmentFile"])
	}
	got := readEnvFile(t, "systemd/nats.env.example")
	for _, name := range accountVariables(t) {
		if !got[name] {
			t.Errorf("nats.env.example does not set %s", name)
		}
		delete(got, name)
	}
	if len(got) > 0 {
		t.Errorf("nats.env.example sets variables accounts.conf does not read: %v", got)
	}
}

// readUnit returns the last value of each key of a systemd unit file.
func readUnit(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not key=value", path, line)
		}
		out[k] = v
	}
	return out
}

// readEnvFile returns the names set by an environment file, commented-out
// ones included (they are documented settings too).
func readEnvFile(t *testing.T, path string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#?([A-Z][A-Z0-9_]*)=`).FindAllStringSubmatch(string(data), -1) {
		out[m[1]] = true
	}
	return out
}

// TestDockerfile checks the settings the image sets are the consumer's, and
// that it builds static binaries and runs them as a non-root user.
func TestDockerfile(t *testing.T) {
	_, env := consumerSettings(t)
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{"CGO_ENABLED=0", "USER 65532:65532", "./cmd/consumer", "COPY go.mod go.sum ./"} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	for _, m := range regexp.MustCompile(`\b(INVOICE_[A-Z0-9_]+)=`).FindAllStringSubmatch(text, -1) {
		if !env[m[1]] {
			t.Errorf("Dockerfile sets %s, not a consumer setting", m[1])
		}
	}
}
