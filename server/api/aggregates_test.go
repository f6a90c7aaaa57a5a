package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/telemetry/batch"
	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

// aggFake adds the aggregated form to the fake over a real ingest.Gate, the
// one the service uses.
type aggFake struct {
	*fake
	gate   *ingest.Gate
	source string
}

func (f *aggFake) IngestAggregates(ctx context.Context, resource, source string, obs []observation.Observation, aggs []record.Aggregate) error {
	f.source = source
	if err := f.gate.Offer(source, aggs, t0); err != nil {
		return err
	}
	return f.fake.Ingest(ctx, resource, obs)
}

func aggServer(t *testing.T, lim ingest.Limits) (*aggFake, *httptest.Server) {
	f := &aggFake{fake: newFake(t), gate: ingest.New("web", []string{"use2-az1", "use2-az2", "use2-az3"}, lim)}
	srv := httptest.NewServer(api.NewHandler(f, api.Options{Tokens: func() []config.Token { return []config.Token{{Name: "alice", Secret: token}} }, Now: func() time.Time { return t0 }}))
	t.Cleanup(srv.Close)
	return f, srv
}

func agg(override string) string {
	base := `"source":"server","zone":"use2-az1","instance":"i-1","operation":"get","requests":10,"faults":1,"errors":2,"latency_ms":[[5,8],[250,2]]`
	if override == "" {
		return "{" + base + "}"
	}
	return "{" + base + "," + override + "}"
}

func TestAggregateConversion(t *testing.T) {
	f, srv := aggServer(t, ingest.Limits{})
	body := fmt.Sprintf(`{"resource":"web","observations":[%s],"aggregates":[%s,%s]}`, obs(""), agg(""), agg(`"slow":7,"at":"2026-03-01T11:59:59Z"`))
	r := do(t, srv, "POST", "/v1/observations", token, body)
	if r.code != 202 || r.body != "{\"accepted\":3}\n" {
		t.Fatalf("%d %s", r.code, r.body)
	}
	var got []record.Aggregate
	f.gate.Drain(t0, 0, func(b []record.Aggregate) { got = append(got, b...) })
	if len(got) != 2 {
		t.Fatalf("got %d aggregates", len(got))
	}
	a := got[0]
	if a.Requests != 10 || a.Faults != 1 || a.Errors != 2 || a.Slow != 2 || !a.At.Equal(t0) || a.Key.Instance != "i-1" || len(a.Latency) != 2 {
		t.Errorf("first: %+v (slow from latency: the 2 at 250 ms are over the default 100 ms)", a)
	}
	if b := got[1]; b.Slow != 7 || !b.At.Equal(t0.Add(-time.Second)) {
		t.Errorf("second: %+v, want its own slow count and at", b)
	}
	if len(f.ingested) != 1 || f.source != "batch" {
		t.Errorf("single observations %d, source %q", len(f.ingested), f.source)
	}
}

func TestAggregateValidation(t *testing.T) {
	for _, tc := range []struct{ agg, want string }{
		{agg(`"source":""`), "aggregates[1].source: is required (server or canary)"},
		{agg(`"zone":""`), "aggregates[1].zone: is required"},
		{agg(`"requests":0`), "aggregates[1].requests: must be at least 1"},
		{agg(`"faults":11`), "aggregates[1].faults: 11 is more than requests (10)"},
		{agg(`"errors":10`), "aggregates[1].errors: faults + errors (11) is more than requests (10)"},
		{agg(`"slow":11`), "aggregates[1].slow: 11 is more than requests (10)"},
		{agg(`"latency_ms":[[5,8],[6,8]]`), "aggregates[1].latency_ms: counts add up to 16, more than requests (10)"},
		{agg(`"latency_ms":[[-1,10]]`), "aggregates[1].latency_ms[0]: latency -1 is not a number from 0 to 86400000 (24h)"},
		{agg(`"latency_ms":[[1,2.5]]`), "aggregates[1].latency_ms[0]: count 2.5 is not a whole number from 0 to requests (10)"},
		{agg(`"latency_ms":[]`), "aggregates[1].slow: is required when latency_ms is empty"},
		{agg(`"requests":-1`), "aggregates[1].requests: want an integer, got number -1"},
		{agg(`"bogus":1`), "aggregates[1].bogus: unknown field"},
		{agg(`"zone":"use2-az9"`), `[1].zone: "use2-az9" is not a zone of web (zones: [use2-az1 use2-az2 use2-az3]): rejected`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			f, srv := aggServer(t, ingest.Limits{})
			r := do(t, srv, "POST", "/v1/observations", token, fmt.Sprintf(`{"resource":"web","aggregates":[%s,%s]}`, agg(""), tc.agg))
			if r.code != 400 {
				t.Fatalf("%d %s, want 400", r.code, r.body)
			}
			if got := r.errMsg(t); got != tc.want {
				t.Errorf("error\n got %q\nwant %q", got, tc.want)
			}
			if f.gate.Pending() != 0 {
				t.Error("part of a bad batch was queued")
			}
		})
	}
}

func TestAggregateCapsAndOverload(t *testing.T) {
	f, srv := aggServer(t, ingest.Limits{MaxInstances: 1, MaxPending: 2})
	r := do(t, srv, "POST", "/v1/observations", token, fmt.Sprintf(`{"resource":"web","aggregates":[%s,%s]}`, agg(""), agg(`"instance":"i-2"`)))
	if r.code != 429 || r.errMsg(t) != `[1].instance: "i-2" would be instance 2 from source batch of web, over its cap of 1 (telemetry.max_instances): over a cap` {
		t.Fatalf("%d %s", r.code, r.body)
	}
	body := fmt.Sprintf(`{"resource":"web","aggregates":[%s,%s]}`, agg(""), agg(""))
	if r := do(t, srv, "POST", "/v1/observations", token, body); r.code != 202 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	r = do(t, srv, "POST", "/v1/observations", token, body)
	if r.code != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("over the buffer: %d %s, want 503 with Retry-After", r.code, r.body)
	}
	st := f.gate.Stats()[0]
	if st.Dropped != 2 || st.Rejected[ingest.ReasonInstances] != 1 || st.Accepted != 2 {
		t.Errorf("stats %+v", st)
	}
}

// A batch of single observations only is counted under its sender's
// X-Grayzone-Source, as a batch with aggregates is.
func TestSingleObservationsKeepTheirSource(t *testing.T) {
	f, srv := aggServer(t, ingest.Limits{})
	req, err := http.NewRequest("POST", srv.URL+"/v1/observations", strings.NewReader(fmt.Sprintf(`{"resource":"web","observations":[%s]}`, obs(""))))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set(batch.SourceHeader, "middleware")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 || f.source != "middleware" || len(f.ingested) != 1 {
		t.Fatalf("status %d, source %q, ingested %d: want 202 from middleware", resp.StatusCode, f.source, len(f.ingested))
	}
}
