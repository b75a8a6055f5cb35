package pipeline_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fapiaohub/invoicer/pipeline"
)

// TestLatencyHistogramsAreNative checks that the latency histograms carry a
// native histogram beside their classic buckets, and that it tells apart
// calls that share a classic bucket (15.6–39 ms).
func TestLatencyHistogramsAreNative(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := pipeline.NewMetrics(reg)
	m.ObserveCall("jumdata", "makeout", "0000", 20*time.Millisecond)
	m.ObserveCall("jumdata", "makeout", "0000", 30*time.Millisecond)
	m.Processing.WithLabelValues("issued").Observe(0.002)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		if name != "invoice_provider_call_seconds" && name != "invoice_processing_seconds" {
			continue
		}
		seen[name] = true
		h := f.GetMetric()[0].GetHistogram()
		if len(h.GetBucket()) == 0 {
			t.Errorf("%s: no classic buckets", name)
		}
		if len(h.GetPositiveSpan()) == 0 {
			t.Errorf("%s: no native histogram (schema %d, no positive spans)", name, h.GetSchema())
			continue
		}
		if name == "invoice_provider_call_seconds" {
			var buckets uint32
			for _, sp := range h.GetPositiveSpan() {
				buckets += sp.GetLength()
			}
			if buckets < 2 {
				t.Errorf("%s: 20 ms and 30 ms fell in one native bucket", name)
			}
		}
	}
	for _, name := range []string{"invoice_provider_call_seconds", "invoice_processing_seconds"} {
		if !seen[name] {
			t.Errorf("%s not gathered", name)
		}
	}
}

// The counters the alert rules take increase() of are exported at 0 from
// the start, each label an alert selects included: a series that first
// appears at 1 shows no increase, so the first dead letter after a start
// would raise no alert.
func TestAlertedCountersStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	pipeline.NewMetrics(reg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				series[key] = c.GetValue()
			}
		}
	}
	for _, want := range []string{
		"invoice_dead_letters_total,reason=malformed",
		"invoice_dead_letters_total,reason=exhausted",
		"invoice_dead_letters_total,reason=action_required",
		"invoice_messages_total,event=error",
		"invoice_messages_total,event=issued",
		"invoice_retries_total,event=retry",
		"invoice_documents_total,outcome=kept",
		"invoice_documents_total,outcome=failed",
	} {
		if v, ok := series[want]; !ok || v != 0 {
			t.Errorf("%s: exported %v, value %v; want it at 0 from the start", want, ok, v)
		}
	}
}

// A provider answering a new code at every call (or a code of any length)
// gets a bounded number of provider-call series: after the first hundred
// codes, and for a code too long to be one, the calls are counted under
// "other". The codes it answered before keep their series, and another
// provider's codes are counted apart.
func TestProviderCallCodesAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := pipeline.NewMetrics(reg)
	for i := range 1000 {
		m.ObserveCall("jumdata", "blue-invoice/submit", fmt.Sprintf("E%04d", i), time.Millisecond)
	}
	m.ObserveCall("jumdata", "blue-invoice/submit", "E0000", time.Millisecond)
	m.ObserveCall("jumdata", "blue-invoice/submit", strings.Repeat("9", 33), time.Millisecond)
	m.ObserveCall("nuonuo", "requestBillingNew", "E9106", time.Millisecond)

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{} // by provider/code
	series := map[string]int{}    // by provider
	for _, f := range families {
		if f.GetName() != "invoice_provider_call_seconds" {
			continue
		}
		for _, mt := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			series[labels["provider"]]++
			counts[labels["provider"]+"/"+labels["code"]] = mt.GetHistogram().GetSampleCount()
		}
	}
	if series["jumdata"] != 101 || series["nuonuo"] != 1 {
		t.Errorf("series by provider %v; want jumdata 101 (100 codes and other), nuonuo 1", series)
	}
	if counts["jumdata/other"] != 901 || counts["jumdata/E0000"] != 2 || counts["nuonuo/E9106"] != 1 {
		t.Errorf("other %d, E0000 %d, nuonuo E9106 %d; want 901, 2, 1", counts["jumdata/other"], counts["jumdata/E0000"], counts["nuonuo/E9106"])
	}
}

// The partner API's answers exist from the start for exactly the result
// codes it answers. 1002 is not one: an unknown channel is answered 1004,
// as a wrong signature, so that a caller cannot tell which channels exist
// (cmd/consumer/partner.go); a series for it would stay 0 forever.
func TestPartnerAnswersStartWithTheCodesAnswered(t *testing.T) {
	reg := prometheus.NewRegistry()
	pipeline.NewMetrics(reg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range families {
		if f.GetName() != "invoice_partner_answers_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					got = append(got, l.GetValue())
				}
			}
			if v := m.GetCounter().GetValue(); v != 0 {
				t.Errorf("%v: %v at the start, want 0", m.GetLabel(), v)
			}
		}
	}
	slices.Sort(got)
	want := []string{"0", "1001", "1003", "1004", "1005", "1006", "1007", "1500"}
	if !slices.Equal(got, want) {
		t.Errorf("invoice_partner_answers_total results at the start %q, want %q", got, want)
	}
}
