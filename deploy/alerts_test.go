package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/pipeline"
	"github.com/fapiaohub/invoicer/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"
)

// ruleFile is a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// synthetic are the series Prometheus writes itself for every target.
var synthetic = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped"}

// TestAlertRules checks that every expression of the alert rules selects
// only series the consumer exports — the names pipeline.NewMetrics and the
// Go and process collectors register, as cmd/consumer registers them — and
// that the alerts the deployment promises exist, the one on an instance
// standing by critical.
func TestAlertRules(t *testing.T) {
	data, err := os.ReadFile("prometheus/invoicer-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var rf ruleFile
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("rule file: %v", err)
	}
	known := exportedSeries(t)
	used := map[string]bool{}
	seen := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			t.Run(r.Alert, func(t *testing.T) {
				if r.Alert == "" || seen[r.Alert] {
					t.Fatalf("alert name %q empty or repeated", r.Alert)
				}
				seen[r.Alert] = true
				if s := r.Labels["severity"]; s != "warning" && s != "critical" {
					t.Errorf("severity %q: warning or critical", s)
				}
				if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Error("summary and description annotations are required")
				}
				if r.For != "" {
					if _, err := time.ParseDuration(r.For); err != nil {
						t.Errorf("for: %v", err)
					}
				}
				names, err := promqlMetrics(r.Expr)
				if err != nil {
					t.Fatalf("expr %q: %v", r.Expr, err)
				}
				if len(names) == 0 {
					t.Errorf("expr %q selects no metric", r.Expr)
				}
				for _, n := range names {
					used[n] = true
					if !known[n] && !slices.Contains(synthetic, n) {
						t.Errorf("expr %q: %s is not a metric the consumer exports", r.Expr, n)
					}
				}
				// An instance standing by answers scrapes and exports
				// invoice_partitions, so InvoiceConsumerMissing counts it:
				// once the owner is gone, the alert on its gauge is the
				// only one for a partition nobody consumes, and while the
				// owner runs, the one consuming may be the one whose order
				// store lacks the orders.
				if slices.Contains(names, "invoice_consumer_stood_down") && r.Labels["severity"] != "critical" {
					t.Errorf("severity %q: an alert on invoice_consumer_stood_down must be critical", r.Labels["severity"])
				}
			})
		}
	}
	for _, must := range []string{"invoice_dead_letters_total", "invoice_action_required_sellers", "invoice_consumer_backlog_age_seconds",
		"invoice_store_commit_seconds_total", "invoice_store_failed_commits_total", "invoice_order_save_seconds_bucket",
		"invoice_store_writable", "invoice_store_disk_free_bytes", "invoice_partitions", "invoice_consumer_stood_down", "invoice_request_consumer_missing",
		"invoice_unclaimed_mark_unknown"} {
		if !used[must] {
			t.Errorf("no alert on %s", must)
		}
	}
}

// noStore reads as a writable store on a file system that can be read.
type noStore struct{}

func (noStore) Stats() store.Stats                      { return store.Stats{} }
func (noStore) Healthy() error                          { return nil }
func (noStore) DiskSpace() (free, size uint64, _ error) { return 1, 1, nil }

// TestAlertRulesFire runs the rules' unit tests
// (prometheus/invoicer-alerts.test.yaml) with promtool: each alert fires in
// the situation it is for, lasts while it lasts, and stays silent
// otherwise. Without promtool on PATH it is skipped, unless
// INVOICE_REQUIRE_PROMTOOL is set (.ci/run sets it, and fetches promtool).
func TestAlertRulesFire(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("INVOICE_REQUIRE_PROMTOOL") != "" {
			t.Fatalf("promtool: %v (INVOICE_REQUIRE_PROMTOOL is set)", err)
		}
		t.Skip("promtool is not installed: the alert rules' unit tests do not run (.ci/run fetches it)")
	}
	cmd := exec.Command(promtool, "test", "rules", "invoicer-alerts.test.yaml")
	cmd.Dir = "prometheus"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// exportedSeries returns every series name the consumer's /metrics can
// show: each metric of pipeline.Metrics (histograms with _bucket, _sum and
// _count), found by reflection so that a new one is known at once, the
// order store's (pipeline.NewStoreCollector) and the Go and process
// collectors'.
func exportedSeries(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(pipeline.NewStoreCollector(noStore{}))
	m := pipeline.NewMetrics(reg)
	out := map[string]bool{}
	v := reflect.ValueOf(m).Elem()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	for i := range v.NumField() {
		if !v.Type().Field(i).IsExported() {
			continue // the metrics' own bookkeeping
		}
		c, ok := v.Field(i).Interface().(prometheus.Collector)
		if !ok {
			continue
		}
		descs := make(chan *prometheus.Desc, 10)
		c.Describe(descs)
		close(descs)
		for d := range descs {
			match := fqName.FindStringSubmatch(d.String())
			if match == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			out[match[1]] = true
			switch c.(type) {
			case *prometheus.HistogramVec:
				out[match[1]+"_bucket"], out[match[1]+"_sum"], out[match[1]+"_count"] = true, true, true
			case *prometheus.SummaryVec:
				out[match[1]+"_sum"], out[match[1]+"_count"] = true, true
			}
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		out[name] = true
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			out[name+"_sum"], out[name+"_count"] = true, true
		}
	}
	for _, sure := range []string{"invoice_messages_total", "invoice_provider_call_seconds_bucket", "go_goroutines", "process_resident_memory_bytes"} {
		if !out[sure] {
			t.Fatalf("exportedSeries misses %s: %v", sure, out)
		}
	}
	return out
}

// promqlKeywords are the PromQL words that are not metric names when not
// followed by "(".
var promqlKeywords = []string{"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2", "start", "end"}

// promqlAggregations may take their grouping before the parentheses
// ("sum by (reason) (…)").
var promqlAggregations = []string{"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
	"bottomk", "topk", "quantile", "limitk", "limit_ratio"}

// promqlGrouping are the modifiers followed by a list of label names.
var promqlGrouping = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}

// promqlMetrics returns the metric names an expression selects: identifiers
// that are not functions or aggregations (followed by "("), keywords, label
// names of a grouping modifier, or inside label matchers ({…}), ranges
// ([…]) or strings.
func promqlMetrics(expr string) ([]string, error) {
	var names []string
	isStart := func(c byte) bool { return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
	isPart := func(c byte) bool { return isStart(c) || c >= '0' && c <= '9' }
	skipString := func(i int) (int, error) {
		q := expr[i]
		for j := i + 1; j < len(expr); j++ {
			switch {
			case expr[j] == '\\' && q != '`':
				j++
			case expr[j] == q:
				return j + 1, nil
			}
		}
		return 0, fmt.Errorf("unterminated string at %d", i)
	}
	skipTo := func(i int, closer byte) (int, error) {
		for j := i + 1; j < len(expr); {
			switch c := expr[j]; {
			case c == '"' || c == '\'' || c == '`':
				k, err := skipString(j)
				if err != nil {
					return 0, err
				}
				j = k
			case c == closer:
				return j + 1, nil
			default:
				j++
			}
		}
		return 0, fmt.Errorf("unclosed %q at %d", expr[i], i)
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{':
			j, err := skipTo(i, '}')
			if err != nil {
				return nil, err
			}
			i = j
		case c == '[':
			j, err := skipTo(i, ']')
			if err != nil {
				return nil, err
			}
			i = j
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isPart(expr[i]) || expr[i] == '.') {
				i++ // a number or a duration: 1.5e9, 5m
			}
		case isStart(c):
			j := i
			for j < len(expr) && isPart(expr[j]) {
				j++
			}
			word := expr[i:j]
			k := j
			for k < len(expr) && (expr[k] == ' ' || expr[k] == '\t' || expr[k] == '\n') {
				k++
			}
			call := k < len(expr) && expr[k] == '('
			if !call && slices.Contains(promqlAggregations, word) {
				next := expr[k:]
				call = strings.HasPrefix(next, "by") || strings.HasPrefix(next, "without")
			}
			switch {
			case slices.Contains(promqlGrouping, word):
				if call {
					end, err := skipTo(k, ')')
					if err != nil {
						return nil, err
					}
					j = end
				}
			case call, slices.Contains(promqlKeywords, strings.ToLower(word)):
			default:
				if !slices.Contains(names, word) {
					names = append(names, word)
				}
			}
			i = j
		default:
			i++
		}
	}
	if len(names) == 0 && strings.TrimSpace(expr) == "" {
		return nil, errors.New("empty expression")
	}
	return names, nil
}

func TestPromQLMetrics(t *testing.T) {
	tests := []struct {
		name, expr string
		want       []string
	}{
		{"bare", "up", []string{"up"}},
		{"matchers", `up{job="invoicer", instance=~"a|b"} == 0`, []string{"up"}},
		{"aggregation by", `sum by (reason) (increase(invoice_dead_letters_total[15m])) > 0`, []string{"invoice_dead_letters_total"}},
		{"aggregation without", "max without (pod) (invoice_consumer_backlog_age_seconds)", []string{"invoice_consumer_backlog_age_seconds"}},
		{"count_values", `count_values("version", build_info)`, []string{"build_info"}},
		{"by after", `sum(rate(a_total[5m])) by (le, provider)`, []string{"a_total"}},
		{"histogram", `histogram_quantile(0.95, sum by (le) (rate(x_seconds_bucket[10m]))) > 5`, []string{"x_seconds_bucket"}},
		{"binary with on", `a / on(instance) group_left(pod) b > bool 1.5e9`, []string{"a", "b"}},
		{"keywords and offset", `a and b offset 5m or c unless d`, []string{"a", "b", "c", "d"}},
		{"strings with braces", `label_replace(a, "dst", "{x}", "src", "(.*)")`, []string{"a"}},
		{"subquery", `max_over_time(rate(a[1m])[10m:1m])`, []string{"a"}},
		{"no metric", `vector(1)`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := promqlMetrics(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("promqlMetrics(%q) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
	for _, bad := range []string{`up{job="x"`, `rate(a[5m)`, `"open`} {
		if _, err := promqlMetrics(bad); err == nil {
			t.Errorf("promqlMetrics(%q): no error", bad)
		}
	}
}
