package sandbox

import (
	"maps"
	"sync"
)

// Stats is the sandbox's account of what it did, served at /_sandbox/stats.
// Tests prove with it that no order was ever invoiced twice.
type Stats struct {
	// Requests counts API calls per provider, faulted ones included.
	Requests map[string]int `json:"requests"`
	// TokenCalls counts token endpoint calls per provider.
	TokenCalls map[string]int `json:"tokenCalls"`
	// Faults counts injected faults by kind (error_5xx, reset, drop,
	// garbage, latency_spike, rate_limited, face_auth).
	Faults map[string]int `json:"faults"`
	// Orders, Submissions, Issuances and Invoices are totals over Sellers.
	Orders      int `json:"orders"`
	Submissions int `json:"submissions"`
	Issuances   int `json:"issuances"`
	Invoices    int `json:"invoices"`
	// Duplicates lists "<seller>:<orderNo>" of every order issued more than
	// once. It must stay empty.
	Duplicates []string `json:"duplicates"`
	// Sellers holds the per-order detail (omitted with ?summary=1).
	Sellers map[string]map[string]OrderStats `json:"sellers,omitempty"`
}

// OrderStats is what the sandbox did for one order of one seller.
type OrderStats struct {
	// Provider is "nuonuo" or "jumdata".
	Provider string `json:"provider"`
	// Submissions counts calls that asked for the order to be issued
	// (requestBillingNew, reInvoice, blue-invoice/submit with a new taskId,
	// saveInvoiceRedConfirm, red-invoice/submit), refused ones included.
	Submissions int `json:"submissions"`
	// Queries counts calls that only asked about the order.
	Queries int `json:"queries"`
	// Issuances counts how many times the order was issued: 0 or 1, or the
	// service issued it twice.
	Issuances int `json:"issuances"`
	// Invoices counts the invoices issued for it (an order may be split; a
	// split order issued in part counts the rest when it is completed).
	Invoices int `json:"invoices"`
}

type statsBook struct {
	mu         sync.Mutex
	requests   map[string]int
	tokenCalls map[string]int
	faults     map[string]int
	orders     map[string]map[string]*OrderStats
}

func newStatsBook() *statsBook {
	return &statsBook{
		requests:   map[string]int{},
		tokenCalls: map[string]int{},
		faults:     map[string]int{},
		orders:     map[string]map[string]*OrderStats{},
	}
}

func (b *statsBook) request(provider string) {
	b.mu.Lock()
	b.requests[provider]++
	b.mu.Unlock()
}

func (b *statsBook) tokenCall(provider string) {
	b.mu.Lock()
	b.tokenCalls[provider]++
	b.mu.Unlock()
}

func (b *statsBook) fault(kind string) {
	b.mu.Lock()
	b.faults[kind]++
	b.mu.Unlock()
}

// order returns the entry of an order; callers hold mu.
func (b *statsBook) order(provider, seller, orderNo string) *OrderStats {
	m := b.orders[seller]
	if m == nil {
		m = map[string]*OrderStats{}
		b.orders[seller] = m
	}
	o := m[orderNo]
	if o == nil {
		o = &OrderStats{Provider: provider}
		m[orderNo] = o
	}
	return o
}

// submission counts a call asking for the order to be issued.
func (b *statsBook) submission(provider, seller, orderNo string) {
	b.mu.Lock()
	b.order(provider, seller, orderNo).Submissions++
	b.mu.Unlock()
}

// query counts a call asking about the order.
func (b *statsBook) query(provider, seller, orderNo string) {
	b.mu.Lock()
	b.order(provider, seller, orderNo).Queries++
	b.mu.Unlock()
}

// issued counts one issuance of the order as invoices invoices.
func (b *statsBook) issued(provider, seller, orderNo string, invoices int) {
	b.mu.Lock()
	o := b.order(provider, seller, orderNo)
	o.Issuances++
	o.Invoices += invoices
	b.mu.Unlock()
}

// completed counts invoices issued to complete an issuance counted before
// (a split order that was issued in part): more invoices, no new issuance.
func (b *statsBook) completed(provider, seller, orderNo string, invoices int) {
	b.mu.Lock()
	b.order(provider, seller, orderNo).Invoices += invoices
	b.mu.Unlock()
}

func (b *statsBook) snapshot(detail bool) Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := Stats{
		Requests:   maps.Clone(b.requests),
		TokenCalls: maps.Clone(b.tokenCalls),
		Faults:     maps.Clone(b.faults),
		Duplicates: []string{},
	}
	if detail {
		st.Sellers = make(map[string]map[string]OrderStats, len(b.orders))
	}
	for seller, orders := range b.orders {
		var m map[string]OrderStats
		if detail {
			m = make(map[string]OrderStats, len(orders))
			st.Sellers[seller] = m
		}
		for no, o := range orders {
			st.Orders++
			st.Submissions += o.Submissions
			st.Issuances += o.Issuances
			st.Invoices += o.Invoices
			if o.Issuances > 1 {
				st.Duplicates = append(st.Duplicates, seller+":"+no)
			}
			if detail {
				m[no] = *o
			}
		}
	}
	return st
}
