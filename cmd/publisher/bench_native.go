package main

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// The consumer's latency histograms whose p99 the breakdown line gives. The
// consumer exports them as native histograms too (buckets about 9% wide),
// read in the protobuf format; their classic buckets are 2.5 times wide
// and could not tell a 20 ms p99 from a 24 ms one.
// A name may select the series with one label value, as in
// name{label="value"}: the saves a request waits for, apart from the
// patient ones.
const (
	nativeProcessing = "invoice_processing_seconds"
	nativeCalls      = "invoice_provider_call_seconds"
	nativeSaves      = `invoice_order_save_seconds{patient="false"}`
)

// acceptProtobuf asks a Prometheus handler for the delimited protobuf
// format, the one that carries native histograms.
const acceptProtobuf = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"

// nativeHist is a native histogram summed over a metric's series: the
// observation counts of its positive buckets by index at one schema, and
// of its zero bucket. Bucket i holds the observations in
// (base^(i-1), base^i], base = 2^(2^-schema).
type nativeHist struct {
	schema int32
	zero   float64
	counts map[int32]float64
}

// fetchNative reads the named histograms' native form from the consumer's
// /metrics at url, keyed by the names as given (a name with a label
// selector sums only the series it selects). A histogram the consumer does
// not export in native form is absent from the result; so is everything
// when the handler does not serve the protobuf format.
func fetchNative(ctx context.Context, client *http.Client, url string, names ...string) (out map[string]nativeHist, err error) {
	err = getOK(ctx, client, url, acceptProtobuf, func(resp *http.Response) error {
		out, err = decodeNative(resp, names...)
		return err
	})
	return out, err
}

// decodeNative reads the named histograms' native form from a response in
// the delimited protobuf format; nil for a response in another format.
func decodeNative(resp *http.Response, names ...string) (map[string]nativeHist, error) {
	format := expfmt.ResponseFormat(resp.Header)
	if format.FormatType() != expfmt.TypeProtoDelim {
		return nil, nil
	}
	dec := expfmt.NewDecoder(io.LimitReader(resp.Body, 16<<20), format)
	sels := make([]selector, len(names))
	for i, n := range names {
		sels[i] = parseSelector(n)
	}
	out := map[string]nativeHist{}
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if mf.GetType() != dto.MetricType_HISTOGRAM {
			continue
		}
		for i, sel := range sels {
			if sel.name != mf.GetName() {
				continue
			}
			if h, ok := readNative(&mf, sel); ok {
				out[names[i]] = h
			}
		}
	}
}

// selector picks a histogram's series: every series of the family name,
// or those whose label has the value value when label is set.
type selector struct {
	name, label, value string
}

// parseSelector reads name or name{label="value"}. Anything else after
// the name selects nothing.
func parseSelector(s string) selector {
	name, rest, found := strings.Cut(s, "{")
	if !found {
		return selector{name: s}
	}
	label, value, ok := strings.Cut(strings.TrimSuffix(rest, "}"), "=")
	if !ok || !strings.HasSuffix(rest, "}") {
		return selector{} // matches no family
	}
	return selector{name: name, label: label, value: strings.Trim(value, `"`)}
}

// selects reports whether the series m is one sel picks.
func (sel selector) selects(m *dto.Metric) bool {
	if sel.label == "" {
		return true
	}
	for _, l := range m.GetLabel() {
		if l.GetName() == sel.label {
			return l.GetValue() == sel.value
		}
	}
	return false
}

// readNative sums the native histograms of the family's series that sel
// picks, at the coarsest schema among them. It reports false when no such
// series has one.
func readNative(mf *dto.MetricFamily, sel selector) (nativeHist, bool) {
	var sum nativeHist
	found := false
	for _, m := range mf.GetMetric() {
		h := m.GetHistogram()
		if h == nil || h.Schema == nil || !sel.selects(m) {
			continue // classic buckets only, or another series
		}
		one := nativeHist{schema: h.GetSchema(), zero: float64(h.GetZeroCount()), counts: map[int32]float64{}}
		var idx int32
		var count int64
		deltas := h.GetPositiveDelta()
		for _, span := range h.GetPositiveSpan() {
			idx += span.GetOffset()
			for range span.GetLength() {
				if len(deltas) == 0 {
					return nativeHist{}, false // malformed: fewer deltas than the spans say
				}
				count += deltas[0]
				deltas = deltas[1:]
				one.counts[idx] = float64(count)
				idx++
			}
		}
		if !found {
			sum, found = one, true
			continue
		}
		sum = sum.plus(one, 1)
	}
	return sum, found
}

// reduce returns h at a coarser schema: each bucket merged into the one of
// the target schema that holds its whole range.
func (h nativeHist) reduce(schema int32) nativeHist {
	if schema >= h.schema {
		return h
	}
	shift := h.schema - schema
	out := nativeHist{schema: schema, zero: h.zero, counts: make(map[int32]float64, len(h.counts))}
	for i, n := range h.counts {
		out.counts[((i-1)>>shift)+1] += n
	}
	return out
}

// plus returns h + sign×o at the coarser of their schemas (sign -1 for the
// difference between two readings of one histogram). Counts below zero,
// from a consumer restarted between the readings, are dropped.
func (h nativeHist) plus(o nativeHist, sign float64) nativeHist {
	schema := min(h.schema, o.schema)
	a, b := h.reduce(schema), o.reduce(schema)
	out := nativeHist{schema: schema, zero: max(a.zero+sign*b.zero, 0), counts: make(map[int32]float64, len(a.counts))}
	for i, n := range a.counts {
		out.counts[i] = n
	}
	for i, n := range b.counts {
		out.counts[i] += sign * n
	}
	for i, n := range out.counts {
		if n <= 0 {
			delete(out.counts, i)
		}
	}
	return out
}

// quantile returns the upper bound, in the histogram's unit, of the bucket
// that holds the q-quantile: the quantile is at most that, and more than
// the bucket's lower bound, about 9% less at the consumer's resolution.
// It reports false for an empty histogram.
func (h nativeHist) quantile(q float64) (float64, bool) {
	total := h.zero
	for _, n := range h.counts {
		total += n
	}
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	if h.zero >= rank {
		return 0, true
	}
	idx := make([]int32, 0, len(h.counts))
	for i := range h.counts {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	base := math.Exp2(math.Exp2(-float64(h.schema)))
	acc := h.zero
	for _, i := range idx {
		acc += h.counts[i]
		if acc >= rank {
			return math.Pow(base, float64(i)), true
		}
	}
	return math.Pow(base, float64(idx[len(idx)-1])), true
}
