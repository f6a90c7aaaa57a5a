package emf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/grayzone/grayzone/internal/bearer"
	"github.com/grayzone/grayzone/telemetry/listener"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/observation"
	"github.com/grayzone/grayzone/telemetry/record"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// workshopLine is a line as the workshop's application writes it.
func workshopLine(at time.Time, zone, inst, op string, success, fault, errs int, latencyMs float64) string {
	return fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Namespace":"multi-az-workshop/frontend","Dimensions":[["Operation","Region","AZ-ID"],["Operation","Region"],["Operation","Region","AZ-ID","InstanceId"]],"Metrics":[{"Name":"SuccessLatency","Unit":"Milliseconds"},{"Name":"Success","Unit":"Count"},{"Name":"Fault","Unit":"Count"},{"Name":"Error","Unit":"Count"}]}]},"Operation":"%s","Region":"us-east-2","AZ-ID":"%s","InstanceId":"%s","HttpStatusCode":200,"SuccessLatency":%g,"Success":%d,"Fault":%d,"Error":%d}`,
		at.UnixMilli(), op, zone, inst, latencyMs, success, fault, errs)
}

func TestParseWorkshopLine(t *testing.T) {
	l, ok, err := WorkshopNames().Parse([]byte(workshopLine(t0, "use2-az1", "i-1", "Ride", 1, 0, 0, 123.5)))
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if l.Zone != "use2-az1" || l.Instance != "i-1" || l.Op != "Ride" || l.Success != 1 || len(l.Latencies) != 1 || l.Latencies[0] != 123500*time.Microsecond || !l.At.Equal(t0) {
		t.Errorf("%+v", l)
	}
	// Another metric of the application: not ours, not an error.
	if _, ok, err := WorkshopNames().Parse([]byte(`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Metrics":[{"Name":"CPU"}]}]},"CPU":3}`)); ok || err != nil {
		t.Errorf("other metric: %v %v", ok, err)
	}
	for _, tc := range []struct{ line, want string }{
		{`nope`, "not a JSON object"},
		{`{"Success":1}`, "_aws.Timestamp: is required"},
		{strings.Replace(workshopLine(t0, "z", "i", "op", 1, 0, 0, 1), `"AZ-ID":"z",`, "", 1), "AZ-ID: dimension is missing"},
		{strings.Replace(workshopLine(t0, "z", "i", "op", 1, 0, 0, 1), `"Success":1`, `"Success":-1`, 1), "Success: -1 is not a count"},
		{strings.Replace(workshopLine(t0, "z", "i", "op", 1, 0, 0, 1), `"SuccessLatency":1`, `"SuccessLatency":"fast"`, 1), "SuccessLatency: want a number or an array of numbers"},
		{strings.Replace(workshopLine(t0, "z", "i", "op", 1, 0, 0, 1), `"SuccessLatency":1`, `"SuccessLatency":[1,2,3]`, 1), "SuccessLatency: 3 latencies for 1 requests"},
		{strings.Replace(workshopLine(t0, "z", "i", "op", 1, 0, 0, 1), `"Unit":"Milliseconds"`, `"Unit":"Hours"`, 1), `unit "Hours" is not Milliseconds`},
	} {
		if _, _, err := WorkshopNames().Parse([]byte(tc.line)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60s: err = %v, want %q", tc.line, err, tc.want)
		}
	}
}

func TestAggregatorPerSeriesAndInterval(t *testing.T) {
	var a Aggregator
	n := WorkshopNames()
	for i, spec := range []struct {
		at             time.Duration
		success, fault int
		latency        float64
	}{{100 * time.Millisecond, 1, 0, 20}, {900 * time.Millisecond, 1, 0, 300}, {1100 * time.Millisecond, 0, 1, 5}} {
		l, _, err := n.Parse([]byte(workshopLine(t0.Add(spec.at), "z1", "i-1", "Ride", spec.success, spec.fault, 0, spec.latency)))
		if err != nil {
			t.Fatal(i, err)
		}
		a.Add(l)
	}
	got := a.Flush(t0.Add(time.Second))
	if len(got) != 1 || got[0].Requests != 2 || !got[0].At.Equal(t0.Add(time.Second)) {
		t.Fatalf("first interval: %+v", got)
	}
	got[0].FillSlow(100 * time.Millisecond)
	if got[0].Slow != 1 {
		t.Errorf("slow %d", got[0].Slow)
	}
	if rest := a.Flush(time.Time{}); len(rest) != 1 || rest[0].Faults != 1 {
		t.Errorf("second interval: %+v", rest)
	}
}

func newSource(t *testing.T, cfg Config) (*Source, *ingest.Gate) {
	t.Helper()
	g := ingest.New("web", []string{"z1", "z2"}, ingest.Limits{})
	cfg.Sink = g
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, g
}

func drain(g *ingest.Gate) []record.Aggregate {
	var out []record.Aggregate
	g.Drain(t0, 0, func(b []record.Aggregate) { out = append(out, b...) })
	return out
}

func TestTailFollowsAppendsRotationAndTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	appendTo := func(s string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	appendTo(workshopLine(t0, "z1", "i-1", "Ride", 1, 0, 0, 5) + "\n") // before the source: not read
	s, g := newSource(t, Config{File: path})
	line := workshopLine(t0, "z1", "i-1", "Ride", 1, 0, 0, 5)
	appendTo(line + "\n" + line[:40]) // one line and the start of another
	s.Poll()
	appendTo(line[40:] + "\nthis is not EMF\n")
	s.Poll()
	s.Flush(time.Time{})
	got := drain(g)
	if len(got) != 1 || got[0].Requests != 2 {
		t.Fatalf("after appends: %+v", got)
	}
	if st := g.Stats()[0]; st.Rejected[ingest.ReasonInvalid] != 1 || !strings.Contains(st.LastReject, "not a JSON object") {
		t.Errorf("bad line not counted: %+v", st)
	}
	// Rotation: the file is renamed and a new one written.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(line + "\n" + line + "\n" + line + "\n")
	s.Poll()
	s.Flush(time.Time{})
	if got := drain(g); len(got) != 1 || got[0].Requests != 3 {
		t.Fatalf("after rotation: %+v", got)
	}
	// Truncation in place: read again from the start.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendTo(line + "\n")
	s.Poll()
	s.Flush(time.Time{})
	if got := drain(g); len(got) != 1 || got[0].Requests != 1 {
		t.Fatalf("after truncation: %+v", got)
	}
}

func TestHTTPBatchAllOrNothing(t *testing.T) {
	s, g := newSource(t, Config{Listen: "127.0.0.1:0", Security: listener.Security{Insecure: true}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	post := func(body string) int {
		resp, err := http.Post("http://"+s.Addr()+"/", "application/x-ndjson", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := workshopLine(t0, "z1", "i-1", "Ride", 1, 0, 0, 5)
	if code := post(good + "\n" + good + "\n" + strings.Replace(good, `"Fault":0`, `"Fault":0.5`, 1) + "\n"); code != 400 {
		t.Fatalf("bad batch: %d", code)
	}
	if code := post(good + "\n" + good + "\n"); code != 202 {
		t.Fatalf("good batch: %d", code)
	}
	s.Flush(time.Time{})
	if got := drain(g); len(got) != 1 || got[0].Requests != 2 {
		t.Fatalf("got %+v: the bad batch must not count at all", got)
	}
	if st := g.Stats()[0]; !strings.Contains(st.LastReject, "line 3: Fault: 0.5 is not a count") {
		t.Errorf("reason %q", st.LastReject)
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add([]byte(workshopLine(t0, "z1", "i-1", "Ride", 1, 0, 0, 5)))
	f.Add([]byte(`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Metrics":[{"Name":"SuccessLatency","Unit":"Seconds"}]}]},"SuccessLatency":[1,2],"AZ-ID":"a","InstanceId":"b","Operation":"c"}`))
	f.Add([]byte(`{}`))
	n := WorkshopNames()
	f.Fuzz(func(t *testing.T, line []byte) {
		l, ok, err := n.Parse(line)
		if err != nil || !ok {
			return
		}
		var a Aggregator
		a.Add(l)
		for _, g := range a.Flush(time.Time{}) {
			if g.Faults+g.Errors > g.Requests {
				t.Fatalf("inconsistent %+v", g)
			}
		}
	})
}

// TestAppendRequestRoundTrips: the line AppendRequest writes for each
// outcome is valid JSON that Parse reads back to the same request.
func TestAppendRequestRoundTrips(t *testing.T) {
	at := t0.Add(1500 * time.Millisecond)
	for _, tc := range []struct {
		outcome        observation.Outcome
		success, fault uint64
		errs           uint64
		latencies      int
	}{
		{observation.Success, 1, 0, 0, 1},
		{observation.Fault, 0, 1, 0, 0},
		{observation.Error, 0, 0, 1, 0},
	} {
		line := AppendRequest(nil, "ns", at, "use2-az1", `i-"1"`, "/pay", tc.outcome, 12345*time.Microsecond)
		if !json.Valid(line) {
			t.Fatalf("%v: not JSON: %s", tc.outcome, line)
		}
		l, ok, err := WorkshopNames().Parse(line)
		if err != nil || !ok {
			t.Fatalf("%v: Parse = %v, %v", tc.outcome, ok, err)
		}
		if !l.At.Equal(at) || l.Zone != "use2-az1" || l.Instance != `i-"1"` || l.Op != "/pay" ||
			l.Success != tc.success || l.Fault != tc.fault || l.Errors != tc.errs || len(l.Latencies) != tc.latencies {
			t.Errorf("%v: parsed %+v", tc.outcome, l)
		}
		if tc.latencies == 1 && l.Latencies[0] != 12345*time.Microsecond {
			t.Errorf("latency %v, want 12.345ms", l.Latencies[0])
		}
	}
}

// TestHTTPNeedsAnIngestToken: without a token a POST gets 401, with a
// read-only token 403, and neither counts; an ingest token's lines are taken.
func TestHTTPNeedsAnIngestToken(t *testing.T) {
	const ingestTok, readTok = "ingest-token-0123456789", "read-token-0123456789ab"
	tokens := []bearer.Token{{Name: "app", Secret: ingestTok, Scopes: bearer.Ingest}, {Name: "board", Secret: readTok, Scopes: bearer.Read}}
	s, g := newSource(t, Config{Listen: "127.0.0.1:0", Now: func() time.Time { return t0 },
		Security: listener.Security{Tokens: func() []bearer.Token { return tokens }}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	good := workshopLine(t0, "z1", "i-1", "Ride", 1, 0, 0, 5)
	for tok, want := range map[string]int{"": 401, "wrong-token-0123456789": 401, readTok: 403, ingestTok: 202} {
		req, _ := http.NewRequest("POST", "http://"+s.Addr()+"/", strings.NewReader(good+"\n"))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("token %q: %d, want %d", tok, resp.StatusCode, want)
		}
	}
	s.Flush(time.Time{})
	if got := drain(g); len(got) != 1 || got[0].Requests != 1 {
		t.Fatalf("got %+v: only the ingest token's line counts", got)
	}
}

// TestFutureLinesDoNotBlind: lines dated far ahead are refused and counted
// (out_of_window); they hold no aggregation bucket, so the lines after them
// still arrive — where 100,000 lines a century ahead used to fill the
// aggregator for good.
func TestFutureLinesDoNotBlind(t *testing.T) {
	s, g := newSource(t, Config{File: "/nonexistent", Now: func() time.Time { return t0 }})
	s.agg.MaxSeries = 100
	for i := range 1000 {
		line := workshopLine(t0.AddDate(100, 0, 0).Add(time.Duration(i)*time.Second), "z1", "i-1", "Ride", 1, 0, 0, 5)
		if err := s.add([][]byte{[]byte(line)}); !errors.Is(err, ingest.ErrOutOfWindow) {
			t.Fatalf("line %d a century ahead: %v", i, err)
		}
	}
	if err := s.add([][]byte{[]byte(workshopLine(t0.Add(-time.Second), "z1", "i-1", "Ride", 1, 0, 0, 5))}); err != nil {
		t.Fatalf("a valid line after the flood: %v", err)
	}
	s.Flush(t0.Add(time.Second))
	if got := drain(g); len(got) != 1 || got[0].Requests != 1 {
		t.Fatalf("after the flood: %+v", got)
	}
	if st := g.Stats()[0]; st.Rejected[ingest.ReasonWindow] != 1000 {
		t.Fatalf("out_of_window = %d, want 1000", st.Rejected[ingest.ReasonWindow])
	}
}

// TestSeriesCapIsRefusedNotDropped: a batch that would take the aggregator
// past its cap is refused whole with ErrCapped (HTTP 429), not taken and
// silently dropped.
func TestSeriesCapIsRefusedNotDropped(t *testing.T) {
	s, g := newSource(t, Config{File: "/nonexistent", Now: func() time.Time { return t0 }})
	s.agg.MaxSeries = 2
	var lines [][]byte
	for i := range 3 {
		lines = append(lines, []byte(workshopLine(t0, "z1", fmt.Sprintf("i-%d", i), "Ride", 1, 0, 0, 5)))
	}
	if err := s.add(lines); !errors.Is(err, ingest.ErrCapped) {
		t.Fatalf("three series over a cap of two: %v", err)
	}
	if err := s.add(lines[:2]); err != nil {
		t.Fatal(err)
	}
	if st := g.Stats()[0]; st.Rejected[ingest.ReasonSeries] != 1 {
		t.Fatalf("series_cap = %d", st.Rejected[ingest.ReasonSeries])
	}
}

// FuzzSourceAdd: batches of lines through the source's whole path (parse,
// time window, series cap) never leave a bucket dated past the tolerated
// skew, never hold more open series than the cap, and a batch is taken
// whole or not at all.
func FuzzSourceAdd(f *testing.F) {
	now := t0
	f.Add([]byte(workshopLine(now, "z1", "i-1", "Ride", 1, 0, 0, 5) + "\n" + workshopLine(now, "z2", "i-2", "Ride", 0, 1, 0, 5)))
	f.Add([]byte(workshopLine(now.AddDate(100, 0, 0), "z1", "i-1", "Ride", 1, 0, 0, 5)))
	f.Add([]byte(workshopLine(now.Add(ingest.MaxFuture), "z1", "i-1", "Ride", 1, 0, 0, 5)))
	f.Add([]byte(workshopLine(now, "z1", "i-1", "Ride", 1, 0, 0, 5) + "\n" + workshopLine(now, "z1", "i-2", "Ride", 1, 0, 0, 5) + "\n" + workshopLine(now, "z1", "i-3", "Ride", 1, 0, 0, 5)))
	f.Fuzz(func(t *testing.T, body []byte) {
		g := ingest.New("web", []string{"z1", "z2"}, ingest.Limits{})
		s, err := New(Config{File: "/nonexistent", Sink: g, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		s.agg.MaxSeries = 2
		before := len(s.agg.open)
		err = s.add(bytes.Split(body, []byte("\n")))
		if err != nil && len(s.agg.open) != before {
			t.Fatalf("a refused batch opened %d series", len(s.agg.open)-before)
		}
		if len(s.agg.open) > s.agg.MaxSeries {
			t.Fatalf("%d open series, cap %d", len(s.agg.open), s.agg.MaxSeries)
		}
		for k := range s.agg.open {
			if time.Unix(0, k.end).Sub(now) > ingest.MaxFuture+s.agg.Interval {
				t.Fatalf("a bucket ends %s ahead", time.Unix(0, k.end).Sub(now))
			}
		}
	})
}
