package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fapiaohub/invoicer/store/storetest"
)

// A caller without a channel's secret learns nothing of which channels
// exist: a query of a channel that does not exist is answered as one of a
// channel that exists with a wrong signature, whatever its timestamp.
func TestPartnerAPIDoesNotTellWhichChannelsExist(t *testing.T) {
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	api := &partnerAPI{secrets: map[string][]byte{"acme": []byte("acme-secret-0123456789")}, store: storetest.Open(t),
		window: 5 * time.Minute, now: func() time.Time { return now }}
	answer := func(channel string, at time.Time) string {
		r := httptest.NewRequest(http.MethodGet, "/partner/queryInvoice?"+partnerQuery(channel, "a-guessed-secret-0123456789", "S1:ISSUED", at).Encode(), nil)
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		return http.StatusText(w.Code) + " " + w.Body.String()
	}
	for _, at := range []time.Time{now, now.Add(-time.Hour), now.Add(time.Hour)} {
		known, unknown := answer("acme", at), answer("evil", at)
		if known != unknown {
			t.Errorf("at %s: an existing channel with a wrong signature is answered\n\t%s\nand a channel that does not exist\n\t%s", now.Sub(at), known, unknown)
		}
	}
}
