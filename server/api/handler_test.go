package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/internal/bearer"
	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
	"github.com/grayzone/grayzone/server/store"
	"github.com/grayzone/grayzone/telemetry/batch"
	"github.com/grayzone/grayzone/telemetry/observation"
)

type response struct {
	code   int
	header http.Header
	body   string
}

func (r response) errMsg(t *testing.T) string {
	t.Helper()
	var e api.ErrorBody
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error == "" {
		t.Fatalf("HTTP %d body %q is not {\"error\": ...}", r.code, r.body)
	}
	if strings.Contains(e.Error, "\n") {
		t.Errorf("error %q is more than one line", e.Error)
	}
	return e.Error
}

func do(t *testing.T, srv *httptest.Server, method, path, tok, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return v
}

const startBody = `{"resource":"web","away_from":"use2-az1","expires_in":"30m","comment":"bad az1"}`

func TestRoutes(t *testing.T) {
	f := newFake(t)
	srv := server(t, f, false)

	r := do(t, srv, "POST", "/v1/shifts", token, startBody)
	if r.code != http.StatusCreated {
		t.Fatalf("start: %d %s", r.code, r.body)
	}
	s := decode[shift.Shift](t, r)
	if s.ID != "gzs-1" || s.Resource != "web" || s.AwayFrom != "use2-az1" || s.Status != shift.Active ||
		s.Origin != shift.Manual || s.Comment != "bad az1" || !s.ExpiresAt.Equal(t0.Add(30*time.Minute)) {
		t.Errorf("started %+v", s)
	}
	if s.StartedBy != "alice" {
		t.Errorf("started_by = %q, want alice", s.StartedBy)
	}
	if loc := r.header.Get("Location"); loc != "/v1/shifts/gzs-1" {
		t.Errorf("Location = %q", loc)
	}

	r = do(t, srv, "GET", "/v1/shifts/gzs-1", token, "")
	if got := decode[shift.Shift](t, r); r.code != 200 || got.ID != "gzs-1" {
		t.Errorf("get: %d %s", r.code, r.body)
	}

	r = do(t, srv, "GET", "/v1/shifts?resource=web&status=active", token, "")
	if got := decode[[]shift.Shift](t, r); r.code != 200 || len(got) != 1 {
		t.Errorf("list: %d %s", r.code, r.body)
	}
	f.read(func() {
		if f.filter != (shift.ListFilter{Resource: "web", Status: shift.Active}) {
			t.Errorf("filter = %+v", f.filter)
		}
	})
	// The wire shape the CLI's --output json promises.
	var raw []map[string]any
	if err := json.Unmarshal([]byte(r.body), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "resource", "away_from", "status", "origin", "comment", "expires_at"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("shift JSON lacks %q: %s", k, r.body)
		}
	}
	if raw[0]["expires_at"] != "2026-03-01T12:30:00Z" {
		t.Errorf("expires_at = %v, want RFC 3339 UTC", raw[0]["expires_at"])
	}

	r = do(t, srv, "PATCH", "/v1/shifts/gzs-1", token, `{"expires_in":"2h","comment":"longer"}`)
	if got := decode[shift.Shift](t, r); r.code != 200 || got.Comment != "longer" ||
		!got.ExpiresAt.Equal(t0.Add(2*time.Hour)) || got.UpdatedBy != "alice" {
		t.Errorf("update: %d %s", r.code, r.body)
	}
	r = do(t, srv, "PATCH", "/v1/shifts/gzs-1", token, `{"comment":"only comment"}`)
	if got := decode[shift.Shift](t, r); r.code != 200 || got.Comment != "only comment" || !got.ExpiresAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("update comment: %d %s", r.code, r.body)
	}

	r = do(t, srv, "POST", "/v1/shifts/gzs-1/cancel", token, "")
	if got := decode[shift.Shift](t, r); r.code != 200 || got.Status != shift.Canceled || got.EndedBy != "alice" {
		t.Errorf("cancel: %d %s", r.code, r.body)
	}
	// DELETE is an alias of cancel.
	do(t, srv, "POST", "/v1/shifts", token, startBody)
	r = do(t, srv, "DELETE", "/v1/shifts/gzs-2", token, "")
	if got := decode[shift.Shift](t, r); r.code != 200 || got.Status != shift.Canceled {
		t.Errorf("delete: %d %s", r.code, r.body)
	}

	r = do(t, srv, "GET", "/v1/status", token, "")
	if st := decode[api.Status](t, r); r.code != 200 || len(st.Resources) != 1 || len(st.Resources[0].Zones) != 3 {
		t.Errorf("status: %d %s", r.code, r.body)
	}

	r = do(t, srv, "GET", "/v1/alarms?resource=web", token, "")
	if as := decode[[]api.Alarm](t, r); r.code != 200 || len(as) != 2 {
		t.Errorf("alarms: %d %s", r.code, r.body)
	}
	f.read(func() {
		if f.alarmRes != "web" {
			t.Errorf("alarms resource = %q", f.alarmRes)
		}
	})

	r = do(t, srv, "GET", "/v1/audit?resource=web&after=3&before=90&limit=5", token, "")
	if es := decode[[]store.AuditEntry](t, r); r.code != 200 || len(es) != 1 || es[0].Seq != 7 {
		t.Errorf("audit: %d %s", r.code, r.body)
	}
	f.read(func() {
		if f.auditQ != (store.AuditQuery{Resource: "web", After: 3, Before: 90, Limit: 5}) {
			t.Errorf("audit query = %+v", f.auditQ)
		}
	})

	r = do(t, srv, "GET", "/v1/practice?resource=web&limit=3", token, "")
	if r.code != 200 || strings.TrimSpace(r.body) != "[]" {
		t.Errorf("practice: %d %s (want [] for none)", r.code, r.body)
	}
	f.read(func() {
		if f.practiceQ != [2]any{"web", 3} {
			t.Errorf("practice query = %v", f.practiceQ)
		}
	})

	r = do(t, srv, "GET", "/v1/decisions", token, "")
	if ds := decode[[]api.Decision](t, r); r.code != 200 || len(ds) != 1 || ds[0].Status != "pending" {
		t.Errorf("decisions: %d %s", r.code, r.body)
	}
	r = do(t, srv, "POST", "/v1/decisions/d1/approve", token, "")
	if d := decode[api.Decision](t, r); r.code != 200 || d.Status != "approved" || d.ApprovedBy != "alice" {
		t.Errorf("approve: %d %s", r.code, r.body)
	}

	r = do(t, srv, "POST", "/v1/observations", token,
		`{"resource":"web","observations":[{"source":"server","zone":"use2-az1","operation":"GET /","status":503,"latency_ms":12.5}]}`)
	if r.code != http.StatusAccepted || strings.TrimSpace(r.body) != `{"accepted":1}` {
		t.Errorf("ingest: %d %s", r.code, r.body)
	}

	r = do(t, srv, "GET", "/healthz", "", "")
	if r.code != 200 || strings.TrimSpace(r.body) != "ok" {
		t.Errorf("healthz: %d %q", r.code, r.body)
	}
}

func TestAuth(t *testing.T) {
	mutations := []struct{ method, path, body string }{
		{"POST", "/v1/shifts", startBody},
		{"PATCH", "/v1/shifts/gzs-1", `{"comment":"x"}`},
		{"POST", "/v1/shifts/gzs-1/cancel", ""},
		{"DELETE", "/v1/shifts/gzs-1", ""},
		{"POST", "/v1/decisions/d1/approve", ""},
		{"POST", "/v1/observations", `{"resource":"web","observations":[{"source":"server","zone":"use2-az1","operation":"op","outcome":"success","latency_ms":1}]}`},
	}
	reads := []string{"/v1/status", "/v1/alarms", "/v1/shifts", "/v1/shifts/gzs-1", "/v1/audit", "/v1/practice", "/v1/decisions"}

	for _, open := range []bool{false, true} {
		t.Run(fmt.Sprintf("open_reads=%v", open), func(t *testing.T) {
			f := newFake(t)
			srv := server(t, f, open)
			if r := do(t, srv, "POST", "/v1/shifts", token, startBody); r.code != 201 {
				t.Fatalf("setup: %d %s", r.code, r.body)
			}
			before := do(t, srv, "GET", "/v1/shifts/gzs-1", token, "").body
			nBefore := len(f.Mutations())

			for _, m := range mutations {
				for _, tok := range []string{"", "wrong", "s3cret-token", token + "x"} {
					r := do(t, srv, m.method, m.path, tok, m.body)
					if r.code != http.StatusUnauthorized {
						t.Errorf("%s %s token %q: %d %s, want 401", m.method, m.path, tok, r.code, r.body)
						continue
					}
					r.errMsg(t)
					if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("%s %s: no WWW-Authenticate", m.method, m.path)
					}
				}
			}
			if got := f.Mutations(); len(got) != nBefore {
				t.Errorf("unauthorized requests reached the backend: %v", got[nBefore:])
			}
			if after := do(t, srv, "GET", "/v1/shifts/gzs-1", token, "").body; after != before {
				t.Errorf("shift changed:\n%s\n%s", before, after)
			}

			for _, p := range reads {
				r := do(t, srv, "GET", p, "", "")
				if open && r.code != 200 || !open && r.code != 401 {
					t.Errorf("GET %s without token: %d %s", p, r.code, r.body)
				}
				if r := do(t, srv, "GET", p, "wrong", ""); !open && r.code != 401 {
					t.Errorf("GET %s with a wrong token: %d", p, r.code)
				}
				if r := do(t, srv, "GET", p, token, ""); r.code != 200 {
					t.Errorf("GET %s with token: %d %s", p, r.code, r.body)
				}
			}
			if r := do(t, srv, "GET", "/healthz", "", ""); r.code != 200 {
				t.Errorf("healthz without token: %d", r.code)
			}
		})
	}
}

func TestAuthNoTokensConfigured(t *testing.T) {
	f := newFake(t)
	for _, tokens := range []func() []config.Token{nil, func() []config.Token { return nil }, func() []config.Token { return []config.Token{{Name: "empty"}} }} {
		srv := httptest.NewServer(api.NewHandler(f, api.Options{Tokens: tokens}))
		for _, tok := range []string{"", "x"} {
			req, _ := http.NewRequest("POST", srv.URL+"/v1/shifts", strings.NewReader(startBody))
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			} else {
				req.Header.Set("Authorization", "Bearer ")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Errorf("no tokens configured, token %q: %d, want 401", tok, resp.StatusCode)
			}
		}
		srv.Close()
	}
	if n := len(f.Mutations()); n != 0 {
		t.Errorf("%d mutations", n)
	}
}

// TestActorIsTheTokensName: shifts show who acted by the token's name, and
// no part of the token.
func TestActorIsTheTokensName(t *testing.T) {
	f := newFake(t)
	const secret = "zq9x-secret-0123456789"
	srv := httptest.NewServer(api.NewHandler(f, api.Options{Tokens: func() []config.Token {
		return []config.Token{{Name: "alice", Secret: token}, {Name: "carol", Secret: secret}}
	}}))
	defer srv.Close()
	r := do(t, srv, "POST", "/v1/shifts", secret, startBody)
	if s := decode[shift.Shift](t, r); s.StartedBy != "carol" {
		t.Errorf("started_by = %q, want carol", s.StartedBy)
	}
	if strings.Contains(r.body, secret[:4]) {
		t.Errorf("the answer shows part of the token: %s", r.body)
	}
}

func TestErrors(t *testing.T) {
	f := newFake(t)
	srv := server(t, f, true)
	if r := do(t, srv, "POST", "/v1/shifts", token, startBody); r.code != 201 {
		t.Fatal(r.body)
	}
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		msg                      string // substring of the error
	}{
		{"unknown shift", "GET", "/v1/shifts/nope", "", 404, `shift "nope": not found`},
		{"cancel unknown", "POST", "/v1/shifts/nope/cancel", "", 404, "not found"},
		{"second shift", "POST", "/v1/shifts", startBody, 409, "already active"},
		{"capacity", "POST", "/v1/shifts", `{"resource":"tiny","away_from":"a","expires_in":"1h"}`, 409, "below min_capacity"},
		{"unknown resource", "POST", "/v1/shifts", `{"resource":"nope","away_from":"a","expires_in":"1h"}`, 404, "not configured"},
		{"bad zone", "POST", "/v1/shifts", `{"resource":"web","away_from":"mars","expires_in":"1h"}`, 400, "away_from: zone"},
		{"short expiry", "PATCH", "/v1/shifts/gzs-1", `{"expires_in":"10s"}`, 400, "expires_in: 10s is out of range"},
		{"bad duration", "POST", "/v1/shifts", `{"resource":"web","away_from":"use2-az2","expires_in":"soon"}`, 400, `expires_in: "soon" is not a duration`},
		{"bad duration patch", "PATCH", "/v1/shifts/gzs-1", `{"expires_in":"5"}`, 400, `expires_in: "5" is not a duration`},
		{"missing expiry", "POST", "/v1/shifts", `{"resource":"web","away_from":"use2-az2"}`, 400, "expires_in: is required"},
		{"missing resource", "POST", "/v1/shifts", `{"away_from":"use2-az2","expires_in":"1h"}`, 400, "resource: is required"},
		{"unknown field", "POST", "/v1/shifts", `{"resource":"web","away_from":"use2-az2","expires_in":"1h","bogus":1}`, 400, "bogus: unknown field"},
		{"wrong type", "POST", "/v1/shifts", `{"resource":"web","away_from":"use2-az2","expires_in":30}`, 400, "expires_in: want a string, got number"},
		{"bad json", "POST", "/v1/shifts", `{"resource":`, 400, "body: truncated JSON"},
		{"syntax", "POST", "/v1/shifts", `{"resource" "web"}`, 400, "body: invalid JSON at byte"},
		{"empty body", "POST", "/v1/shifts", "", 400, "body: empty"},
		{"trailing", "POST", "/v1/shifts", startBody + `{}`, 400, "unexpected data after"},
		{"nothing to update", "PATCH", "/v1/shifts/gzs-1", `{}`, 400, "nothing to update"},
		{"approve unknown", "POST", "/v1/decisions/zz/approve", "", 404, "not found"},
		{"bad status filter", "GET", "/v1/shifts?status=gone", "", 400, `status: "gone" is not ACTIVE`},
		{"unknown param", "GET", "/v1/shifts?resouce=web", "", 400, `query: unknown parameter "resouce"`},
		{"bad limit", "GET", "/v1/audit?limit=-1", "", 400, `limit: "-1" is not a non-negative integer`},
		{"bad after", "GET", "/v1/audit?after=x", "", 400, `after: "x"`},
		{"unknown route", "GET", "/v1/nope", "", 404, "no route GET /v1/nope"},
		{"wrong method", "PUT", "/v1/shifts/gzs-1", "", 405, "method PUT is not allowed"},
		{"unknown resource ingest", "POST", "/v1/observations", `{"resource":"nope","observations":[]}`, 404, "not found"},
		{"unknown zone ingest", "POST", "/v1/observations", `{"resource":"web","observations":[{"source":"server","zone":"nowhere","operation":"op","outcome":"success","latency_ms":1}]}`, 400, "nowhere"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, srv, tc.method, tc.path, token, tc.body)
			if r.code != tc.code {
				t.Fatalf("%d %s, want %d", r.code, r.body, tc.code)
			}
			if msg := r.errMsg(t); !strings.Contains(msg, tc.msg) {
				t.Errorf("error %q lacks %q", msg, tc.msg)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	if r := do(t, srv, "PUT", "/v1/shifts/gzs-1", token, ""); !strings.Contains(r.header.Get("Allow"), "PATCH") {
		t.Errorf("405 Allow = %q", r.header.Get("Allow"))
	}

	// Anything but the sentinels is the server's fault.
	f.read(func() { f.err = errors.New("database is locked\nsecond line") })
	r := do(t, srv, "GET", "/v1/status", token, "")
	if r.code != 500 || r.errMsg(t) != "database is locked; second line" {
		t.Errorf("backend failure: %d %s", r.code, r.body)
	}
}

// obs is a valid observation as a JSON object with fields overridden.
func obs(override string) string {
	base := `"source":"server","zone":"use2-az1","operation":"GET /","outcome":"success","latency_ms":3`
	if override == "" {
		return "{" + base + "}"
	}
	// Later keys win in encoding/json, so an override replaces a base field.
	return "{" + base + "," + override + "}"
}

func TestObservationValidation(t *testing.T) {
	future := t0.Add(6 * time.Minute).Format(time.RFC3339)
	for _, tc := range []struct {
		obs  string // the observation at index 3
		want string
	}{
		{`{"source":"","zone":"z","operation":"o","outcome":"success","latency_ms":1}`, "observations[3].source: is required (server or canary)"},
		{obs(`"source":"client"`), `observations[3].source: "client" is not server or canary`},
		{obs(`"zone":""`), "observations[3].zone: is required"},
		{obs(`"operation":""`), "observations[3].operation: is required"},
		{obs(`"status":200`), "observations[3].outcome: give outcome or status, not both"},
		{`{"source":"server","zone":"z","operation":"o","latency_ms":1}`, "observations[3].outcome: is required (or give status)"},
		{obs(`"outcome":"meh"`), `observations[3].outcome: "meh" is not success, error or fault`},
		{`{"source":"server","zone":"z","operation":"o","status":42,"latency_ms":1}`, "observations[3].status: 42 is not 0 (no response) or 100..599"},
		{`{"source":"server","zone":"z","operation":"o","status":600,"latency_ms":1}`, "observations[3].status: 600 is not 0 (no response) or 100..599"},
		{obs(`"latency_ms":-1`), "observations[3].latency_ms: -1 is negative"},
		{obs(`"latency_ms":-0.5`), "observations[3].latency_ms: -0.5 is negative"},
		{obs(`"latency_ms":1e300`), "observations[3].latency_ms: 1e+300 is over the limit of 86400000 (24h)"},
		{obs(`"latency_ms":1e999`), "observations[3].latency_ms: 1e999 is out of range"},
		{obs(`"latency_ms":"3"`), "observations[3].latency_ms: want a number, got string"},
		{obs(`"at":"` + future + `"`), "observations[3].at: 2026-03-01T12:06:00Z is 6m0s in the future (limit 5m)"},
		{obs(`"at":"yesterday"`), `observations[3].at: "yesterday" is not an RFC 3339 time`},
		{obs(`"regional":true`), "observations[3].regional: only canary observations can be regional"},
		{obs(`"colour":"red"`), "observations[3].colour: unknown field"},
		{`42`, "observations[3]: want an object, got number"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			f := newFake(t)
			srv := server(t, f, false)
			body := fmt.Sprintf(`{"resource":"web","observations":[%s,%s,%s,%s,%s]}`, obs(""), obs(""), obs(""), tc.obs, obs(""))
			r := do(t, srv, "POST", "/v1/observations", token, body)
			if r.code != 400 {
				t.Fatalf("%d %s, want 400", r.code, r.body)
			}
			if got := r.errMsg(t); got != tc.want {
				t.Errorf("error\n got %q\nwant %q", got, tc.want)
			}
			if m := f.Mutations(); len(m) != 0 {
				t.Errorf("a batch with a bad observation reached the backend: %v", m)
			}
		})
	}
}

func TestObservationConversion(t *testing.T) {
	f := newFake(t)
	srv := server(t, f, false)
	at := t0.Add(-time.Second)
	atFuture := t0.Add(4 * time.Minute) // within the skew allowed
	body := fmt.Sprintf(`{"resource":"web","observations":[
		{"source":"server","zone":"use2-az1","instance":"i-1","operation":"GET /","status":503,"latency_ms":12.5,"at":%q},
		{"source":"canary","zone":"use2-az2","operation":"GET /","status":0,"latency_ms":0,"regional":true},
		{"source":"server","zone":"use2-az3","operation":"PUT /","outcome":"error","latency_ms":1,"at":%q}]}`,
		at.Format(time.RFC3339Nano), atFuture.Format(time.RFC3339))
	r := do(t, srv, "POST", "/v1/observations", token, body)
	if r.code != 202 || decode[api.Accepted](t, r).Accepted != 3 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	want := []observation.Observation{
		{At: at, Source: observation.Server, Zone: "use2-az1", Instance: "i-1", Operation: "GET /", Outcome: observation.Fault, Latency: 12500 * time.Microsecond},
		{At: t0, Source: observation.Canary, Zone: "use2-az2", Operation: "GET /", Outcome: observation.Fault, Regional: true},
		{At: atFuture, Source: observation.Server, Zone: "use2-az3", Operation: "PUT /", Outcome: observation.Error, Latency: time.Millisecond},
	}
	f.read(func() {
		if f.resource != "web" || len(f.ingested) != len(want) {
			t.Fatalf("ingested %q %+v", f.resource, f.ingested)
		}
		for i := range want {
			if f.ingested[i] != want[i] {
				t.Errorf("[%d]\n got %+v\nwant %+v", i, f.ingested[i], want[i])
			}
		}
	})
}

func TestObservationLimits(t *testing.T) {
	f := newFake(t)
	srv := server(t, f, false)
	one := obs("")
	many := func(n int) string {
		return `{"resource":"web","observations":[` + strings.TrimSuffix(strings.Repeat(one+",", n), ",") + "]}"
	}
	if r := do(t, srv, "POST", "/v1/observations", token, many(batch.MaxObservations)); r.code != 202 {
		t.Errorf("%d observations: %d %.200s", batch.MaxObservations, r.code, r.body)
	}
	r := do(t, srv, "POST", "/v1/observations", token, many(batch.MaxObservations+1))
	if r.code != 400 || r.errMsg(t) != "observations: 10001 is over the limit of 10000 per batch" {
		t.Errorf("too many: %d %s", r.code, r.body)
	}
	big := `{"resource":"web","observations":[` + obs(`"operation":"`+strings.Repeat("x", api.MaxObservationBytes)+`"`) + "]}"
	r = do(t, srv, "POST", "/v1/observations", token, big)
	if r.code != http.StatusRequestEntityTooLarge || !strings.Contains(r.errMsg(t), "larger than the limit of 8388608 bytes") {
		t.Errorf("too big: %d %s", r.code, r.body)
	}
	if m := f.Mutations(); len(m) != 1 {
		t.Errorf("mutations %v, want only the first batch", m)
	}
}

func TestMetricsAndLogs(t *testing.T) {
	f := newFake(t)
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	opts := api.Options{
		Tokens:  func() []config.Token { return []config.Token{{Name: "alice", Secret: token}} },
		Log:     slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Metrics: reg,
	}
	srv := httptest.NewServer(api.NewHandler(f, opts))
	defer srv.Close()
	// A second handler on the same registry must not panic or lose counts.
	_ = api.NewHandler(f, opts)

	do(t, srv, "GET", "/v1/shifts/nope", token, "")
	do(t, srv, "GET", "/v1/shifts/nope", token, "")
	do(t, srv, "POST", "/v1/shifts", token+"-wrong", startBody)
	do(t, srv, "GET", "/nope", "", "")

	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "grayzone_api_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["route"]+" "+labels["code"]] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"POST /v1/shifts 401":     1,
		"GET /v1/shifts/{id} 404": 2,
		"unmatched 404":           1,
	}
	if !maps.Equal(got, want) {
		t.Errorf("grayzone_api_requests_total = %v, want %v", got, want)
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Errorf("a token reached the log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "unauthorized") {
		t.Errorf("no warning for the refused token:\n%s", logs.String())
	}
}

// TestScopes: an ingest token posts observations but gets 403 on every
// mutation; a read token reads but can neither post telemetry nor mutate;
// an operate token mutates; an unscoped token (a line written before
// scopes) may do everything. Nothing refused reaches the backend.
func TestScopes(t *testing.T) {
	f := newFake(t)
	const ingest, read, operate = "ingest-token-0123456789", "read-token-0123456789ab", "operate-token-0123456789"
	srv := httptest.NewServer(api.NewHandler(f, api.Options{Tokens: func() []config.Token {
		return []config.Token{{Name: "app", Secret: ingest, Scopes: bearer.Ingest}, {Name: "board", Secret: read, Scopes: bearer.Read},
			{Name: "oncall", Secret: operate, Scopes: bearer.Operate}, {Name: "legacy", Secret: token}}
	}}))
	defer srv.Close()
	obs := `{"resource":"web","observations":[{"source":"server","zone":"use2-az1","operation":"op","outcome":"success","latency_ms":1}]}`
	mutations := []struct{ method, path, body string }{
		{"POST", "/v1/shifts", startBody},
		{"PATCH", "/v1/shifts/gzs-1", `{"comment":"x"}`},
		{"POST", "/v1/shifts/gzs-1/cancel", ""},
		{"DELETE", "/v1/shifts/gzs-1", ""},
		{"POST", "/v1/decisions/d1/approve", ""},
	}
	n := len(f.Mutations())
	for _, tok := range []string{ingest, read} {
		for _, m := range mutations {
			if r := do(t, srv, m.method, m.path, tok, m.body); r.code != http.StatusForbidden || !strings.Contains(r.errMsg(t), "needs operate") {
				t.Errorf("%s %s with a %s-only token: %d %s, want 403", m.method, m.path, tok[:4], r.code, r.body)
			}
		}
	}
	for _, tok := range []string{read, operate} {
		if r := do(t, srv, "POST", "/v1/observations", tok, obs); r.code != http.StatusForbidden {
			t.Errorf("observations with token %s: %d %s, want 403", tok[:4], r.code, r.body)
		}
	}
	if got := f.Mutations(); len(got) != n {
		t.Fatalf("refused requests reached the backend: %v", got[n:])
	}
	if r := do(t, srv, "GET", "/v1/shifts", ingest, ""); r.code != http.StatusForbidden {
		t.Errorf("GET with an ingest-only token: %d", r.code)
	}
	if r := do(t, srv, "GET", "/v1/shifts", read, ""); r.code != 200 {
		t.Errorf("GET with a read token: %d", r.code)
	}
	for _, tok := range []string{ingest, token} {
		if r := do(t, srv, "POST", "/v1/observations", tok, obs); r.code/100 != 2 {
			t.Errorf("observations with token %s: %d %s", tok[:4], r.code, r.body)
		}
	}
	for _, tok := range []string{operate, token} {
		r := do(t, srv, "POST", "/v1/shifts", tok, startBody)
		if r.code != 201 {
			t.Errorf("start with token %s: %d %s", tok[:4], r.code, r.body)
		}
		do(t, srv, "DELETE", "/v1/shifts/"+decode[shift.Shift](t, r).ID, tok, "")
	}
}
