package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/telemetry/batch"
	"github.com/grayzone/grayzone/telemetry/observation"
)

// FuzzObservationBatch posts arbitrary bodies to POST /v1/observations, the
// one endpoint senders feed continuously, and checks the contract: an
// answer of 202 with everything ingested and valid, or a 4xx with a one-line
// error and nothing ingested at all; never a 5xx or a panic.
func FuzzObservationBatch(f *testing.F) {
	for _, s := range []string{
		`{"resource":"web","observations":[{"source":"server","zone":"use2-az1","instance":"i-1","operation":"ride","outcome":"fault","latency_ms":5}]}`,
		`{"resource":"web","observations":[{"source":"canary","zone":"use2-az2","operation":"home","status":200,"latency_ms":4.1,"regional":true}]}`,
		`{"resource":"web","observations":[{"source":"server","zone":"use2-az1","operation":"pay","status":0,"latency_ms":0,"at":"2026-03-01T12:00:00Z"}]}`,
		`{"resource":"web","observations":[]}`,
		`{"resource":"web","observations":[{"source":"server","zone":"nowhere","operation":"a","outcome":"success","latency_ms":1}]}`,
		`{"resource":"web","observations":[{"source":"server","zone":"z","operation":"a","outcome":"success","latency_ms":1e999}]}`,
		`{"resource":"web","observations":[{"source":"server","zone":"z","operation":"a","outcome":"success","status":500,"latency_ms":1}]}`,
		`{"resource":"web","observations":[{"source":"server","zone":"z","operation":"a","outcome":"success","latency_ms":-1,"at":"2099-01-01T00:00:00Z"}]}`,
		`{"resource":"web","observations":[{"source":"server","zone":"z","operation":"a","outcome":"success","latency_ms":1,"at":"yesterday"}]}`,
		`{"resource":"web","observations":[{"source":"server","zone":"z","operation":"a","outcome":"success","latency_ms":1,"extra":1}]}`,
		`{"resource":"other","observations":[{"source":"server","zone":"z","operation":"a","outcome":"success","latency_ms":1}]}`,
		`{"resource":"web","observations":[{}]}{}`,
		`{"resource":"web","observations":{}}`,
		`[]`, ``, `{`, `null`, `{"resource":null}`, "\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		fk := newFake(t)
		h := api.NewHandler(fk, api.Options{Tokens: func() []config.Token { return []config.Token{{Name: "fuzz", Secret: "tok"}} }, Now: func() time.Time { return t0 }})
		req := httptest.NewRequest(http.MethodPost, "/v1/observations", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer tok")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusAccepted:
			var acc api.Accepted
			if err := json.Unmarshal(rec.Body.Bytes(), &acc); err != nil || acc.Accepted != len(fk.ingested) {
				t.Fatalf("202 %q but %d ingested", rec.Body.String(), len(fk.ingested))
			}
			for i, o := range fk.ingested {
				if o.Zone == "" || o.Operation == "" || (o.Source != observation.Server && o.Source != observation.Canary) ||
					o.Latency < 0 || o.Latency > 24*time.Hour || o.At.After(t0.Add(batch.MaxFuture)) ||
					(o.Regional && o.Source != observation.Canary) {
					t.Fatalf("invalid observation %d ingested: %+v", i, o)
				}
			}
		case rec.Code >= 400 && rec.Code < 500:
			var e api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || strings.ContainsAny(e.Error, "\n\r") {
				t.Fatalf("%d with a bad error body %q", rec.Code, rec.Body.String())
			}
			if len(fk.ingested) != 0 {
				t.Fatalf("%d %q but %d observations ingested", rec.Code, e.Error, len(fk.ingested))
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
		}
	})
}
