package service_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grayzone/grayzone/internal/freeport"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Tokens of the telemetry attack tests: an application's (ingest only)
// and an operator's (operate, read).
const (
	appToken = "app-ingest-token-0123456789abcdef"
	opsToken = "ops-operate-token-0123456789abcdef"
)

// ingestServe is grayzone serve with OTLP (HTTP and gRPC) and EMF over
// HTTP, each requiring a token with the ingest scope; extra is appended to
// the OTLP source's mapping (limits).
type ingestServe struct {
	*server
	otlpHTTP, otlpGRPC, emf string
}

func startIngestServe(t *testing.T, otlpExtra, telemetryExtra string) *ingestServe {
	t.Helper()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.txt")
	if err := os.WriteFile(tokens, []byte("app:"+appToken+":ingest\nops:"+opsToken+":operate,read\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &ingestServe{otlpHTTP: freeport.Addr(t), otlpGRPC: freeport.Addr(t), emf: freeport.Addr(t)}
	cfg := fmt.Sprintf(`auth: {tokens_file: %s, open_reads: true}
resources:
  - name: web
    zones: [z1, z2]
    frontdoor:
      type: embedded
      regional: 127.0.0.1:0
      zonal: {z1: 127.0.0.1:0, z2: 127.0.0.1:0}
      record: false
      targets:
        - {id: a1, zone: z1, addr: 127.0.0.1:1}
        - {id: a2, zone: z1, addr: 127.0.0.1:2}
        - {id: b1, zone: z2, addr: 127.0.0.1:3}
        - {id: b2, zone: z2, addr: 127.0.0.1:4}
    operations: {ride: {latency_threshold: 1s}}
    autoshift: {enabled: true}
    telemetry:
%s      sources:
        - {type: otlp, http: %s, grpc: %s%s}
        - {type: emf, listen: %s}
`, tokens, telemetryExtra, s.otlpHTTP, s.otlpGRPC, otlpExtra, s.emf)
	path := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s.server = startServe(t, "--config", path, "--data-dir", filepath.Join(dir, "data"))
	return s
}

// forged is an OTLP export claiming that z1's instance a1 answers 500 to
// every request on each route given.
func forged(at time.Time, routes ...string) pmetricotlp.ExportRequest {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("cloud.availability_zone", "z1")
	rm.Resource().Attributes().PutStr("service.instance.id", "a1")
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("http.server.request.duration")
	m.SetUnit("s")
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	for _, r := range routes {
		dp := h.DataPoints().AppendEmpty()
		dp.Attributes().PutStr("http.route", r)
		dp.Attributes().PutInt("http.response.status_code", 500)
		dp.SetTimestamp(pcommon.NewTimestampFromTime(at))
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(-time.Second)))
		dp.SetCount(50)
		dp.ExplicitBounds().FromRaw([]float64{0.1})
		dp.BucketCounts().FromRaw([]uint64{50, 0})
		dp.SetSum(0.5)
	}
	return pmetricotlp.NewExportRequestFromMetrics(md)
}

func postOTLP(t *testing.T, addr, token string, req pmetricotlp.ExportRequest) (int, string) {
	t.Helper()
	body, err := req.MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return postWith(t, "http://"+addr+"/v1/metrics", token, "application/x-protobuf", bytes.NewReader(body))
}

func postWith(t *testing.T, url, token, ctype string, body io.Reader) (int, string) {
	t.Helper()
	r, _ := http.NewRequest("POST", url, body)
	r.Header.Set("Content-Type", ctype)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func exportGRPC(t *testing.T, addr, token string, req pmetricotlp.ExportRequest) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	_, err = pmetricotlp.NewGRPCClient(conn).Export(ctx, req)
	return err
}

func emfLine(at time.Time, status string) string {
	return fmt.Sprintf(`{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Dimensions":[["AZ-ID"]],"Metrics":[{"Name":"Success"},{"Name":"Fault"}]}]},"AZ-ID":"z1","InstanceId":"a1","Operation":"ride",%s}`,
		at.UnixMilli(), status)
}

// metricValue reads one sample of serve's /metrics (0 when absent).
func metricValue(t *testing.T, s *server, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(get(t, s.url()+"/metrics"))
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestForgedTelemetryRefused: forged OTLP over HTTP and gRPC and EMF lines,
// without a token or with a wrong one, get 401 / Unauthenticated and reach
// nothing (no telemetry counted, no shift); a read/operate token cannot
// post telemetry (403 / PermissionDenied); with the application's ingest
// token the same data is taken, and that token gets 403 on POST /v1/shifts.
func TestForgedTelemetryRefused(t *testing.T) {
	t.Parallel()
	s := startIngestServe(t, "", "")
	now := time.Now()
	for _, tok := range []string{"", "forged-token-0123456789abcdef"} {
		for range 10 {
			if code, body := postOTLP(t, s.otlpHTTP, tok, forged(now, "ride")); code != http.StatusUnauthorized {
				t.Fatalf("OTLP/HTTP token %q: %d %s, want 401", tok, code, body)
			}
			if err := exportGRPC(t, s.otlpGRPC, tok, forged(now, "ride")); status.Code(err) != codes.Unauthenticated {
				t.Fatalf("OTLP/gRPC token %q: %v, want Unauthenticated", tok, err)
			}
			if code, _ := postWith(t, "http://"+s.emf+"/", tok, "application/x-ndjson", strings.NewReader(emfLine(now, `"Success":0,"Fault":1`)+"\n")); code != http.StatusUnauthorized {
				t.Fatalf("EMF token %q: %d, want 401", tok, code)
			}
		}
	}
	if code, _ := postOTLP(t, s.otlpHTTP, opsToken, forged(now, "ride")); code != http.StatusForbidden {
		t.Errorf("OTLP/HTTP with an operate,read token: %d, want 403", code)
	}
	if err := exportGRPC(t, s.otlpGRPC, opsToken, forged(now, "ride")); status.Code(err) != codes.PermissionDenied {
		t.Errorf("OTLP/gRPC with an operate,read token: %v, want PermissionDenied", err)
	}
	for _, src := range []string{"otlp", "emf"} {
		if v := metricValue(t, s.server, `grayzone_telemetry_requests_total{resource="web",source="`+src+`"}`); v != 0 {
			t.Errorf("%s: %v requests counted from refused senders", src, v)
		}
	}
	if out := get(t, s.url()+"/v1/shifts"); strings.Contains(out, `"id"`) {
		t.Fatalf("a shift exists: %s", out)
	}

	// The application's ingest token: taken, over every transport.
	if code, body := postOTLP(t, s.otlpHTTP, appToken, forged(now, "ride")); code != http.StatusOK {
		t.Fatalf("OTLP/HTTP with the ingest token: %d %s", code, body)
	}
	if err := exportGRPC(t, s.otlpGRPC, appToken, forged(now, "ride")); err != nil {
		t.Fatalf("OTLP/gRPC with the ingest token: %v", err)
	}
	if code, body := postWith(t, "http://"+s.emf+"/", appToken, "application/x-ndjson", strings.NewReader(emfLine(now.Add(-2*time.Second), `"Success":1,"Fault":0`)+"\n")); code != http.StatusAccepted {
		t.Fatalf("EMF with the ingest token: %d %s", code, body)
	}
	waitMetric(t, s.server, `grayzone_telemetry_requests_total{resource="web",source="otlp"}`, 100)
	waitMetric(t, s.server, `grayzone_telemetry_requests_total{resource="web",source="emf"}`, 1)

	// ... and it cannot move traffic.
	code, body := postWith(t, s.url()+"/v1/shifts", appToken, "application/json", strings.NewReader(`{"resource":"web","away_from":"z1","expires_in":"30m"}`))
	if code != http.StatusForbidden {
		t.Fatalf("POST /v1/shifts with the ingest token: %d %s, want 403", code, body)
	}
}

func waitMetric(t *testing.T, s *server, series string, want float64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := metricValue(t, s, series)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v; serve stderr:\n%s", series, v, want, s.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMadeUpRoutesDoNotCrowdOut: an OTLP export with 100 made-up routes
// (from a leaked application token) is refused over the OTLP source's own
// operation cap with 429 and the reason; the operator's batch on the batch
// API, for the configured operation and a route of its own, is still
// accepted — it used to get 400 for ten minutes.
func TestMadeUpRoutesDoNotCrowdOut(t *testing.T) {
	t.Parallel()
	s := startIngestServe(t, "", "      max_operations: 20\n")
	var routes []string
	for i := range 100 {
		routes = append(routes, fmt.Sprintf("/made-up/%d", i))
	}
	code, body := postOTLP(t, s.otlpHTTP, appToken, forged(time.Now(), routes...))
	if code != http.StatusTooManyRequests || !strings.Contains(body, "telemetry.max_operations") {
		t.Fatalf("100 made-up routes: %d %q, want 429 naming the cap", code, body)
	}
	if code, body := postOTLP(t, s.otlpHTTP, appToken, forged(time.Now(), routes[:20]...)); code != http.StatusOK {
		t.Fatalf("20 made-up routes: %d %s", code, body)
	}
	batch := fmt.Sprintf(`{"resource":"web","observations":[{"at":%q,"source":"server","zone":"z1","instance":"a1","operation":"ride","outcome":"success","latency_ms":3},{"at":%q,"source":"server","zone":"z2","instance":"b1","operation":"/checkout","outcome":"success","latency_ms":3}]}`,
		time.Now().UTC().Format(time.RFC3339Nano), time.Now().UTC().Format(time.RFC3339Nano))
	if code, body := postWith(t, s.url()+"/v1/observations", appToken, "application/json", strings.NewReader(batch)); code/100 != 2 {
		t.Fatalf("the operator's batch after the flood: %d %s", code, body)
	}
	// The configured operation from the flooded source too.
	if code, body := postOTLP(t, s.otlpHTTP, appToken, forged(time.Now(), "ride")); code != http.StatusOK {
		t.Fatalf("the configured operation over OTLP: %d %s", code, body)
	}
}

// TestFutureEMFDoesNotBlind: 1,000 EMF lines a century ahead are refused
// (400, counted as out_of_window); valid lines after them still arrive.
func TestFutureEMFDoesNotBlind(t *testing.T) {
	t.Parallel()
	s := startIngestServe(t, "", "")
	ahead := time.Now().AddDate(100, 0, 0)
	var lines strings.Builder
	for i := range 1000 {
		fmt.Fprintln(&lines, emfLine(ahead.Add(time.Duration(i)*time.Second), `"Success":1,"Fault":0`))
	}
	for range 10 {
		if code, _ := postWith(t, "http://"+s.emf+"/", appToken, "application/x-ndjson", strings.NewReader(lines.String())); code != http.StatusBadRequest {
			t.Fatalf("lines a century ahead: %d, want 400", code)
		}
	}
	for range 3 {
		if code, body := postWith(t, "http://"+s.emf+"/", appToken, "application/x-ndjson", strings.NewReader(emfLine(time.Now().Add(-2*time.Second), `"Success":1,"Fault":0`)+"\n")); code != http.StatusAccepted {
			t.Fatalf("a valid line after them: %d %s", code, body)
		}
	}
	waitMetric(t, s.server, `grayzone_telemetry_requests_total{resource="web",source="emf"}`, 3)
	if v := metricValue(t, s.server, `grayzone_telemetry_rejected_total{reason="out_of_window",resource="web",source="emf"}`); v != 10 {
		t.Errorf("out_of_window = %v, want 10", v)
	}
}

// slowGzipBound is the stated bound on serve's heap growth under the
// slow-gzip-body attack with the limits below: max_in_flight (4) bodies of
// at most max_body_bytes (4 MiB) decompressed, each in a buffer that may
// have doubled to twice that, times two for what the garbage collector
// lets accumulate (GOGC=100), plus 16 MiB for everything else: 80 MiB.
// Measured on the shared 2-core machine (load average about 40): 7.9 MiB
// before, 60.5 MiB peak. Before the limits, the issue measured serve's
// memory growing by 464 MB under the same attack and staying there.
const slowGzipBound = 2*4*2*(4<<20) + 16<<20

// TestSlowGzipBodiesBounded: 20 connections holding the application's
// ingest token (the worst case: a leaked token) trickle gzip bodies of
// zeros to the OTLP receiver for a few seconds. serve's heap stays within
// slowGzipBound of where it started, the connections beyond the in-flight
// cap get 429 with the reason, and an honest export still goes through
// afterwards.
func TestSlowGzipBodiesBounded(t *testing.T) {
	t.Parallel()
	s := startIngestServe(t, ", limits: {max_in_flight: 4, max_body_bytes: 4194304, body_timeout: 3s}", "")
	heap := func() float64 { return metricValue(t, s.server, "go_memstats_heap_inuse_bytes") }
	base := heap()
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr, pw := io.Pipe()
			go func() {
				zw := gzip.NewWriter(pw)
				zero := make([]byte, 256<<10)
				for i := 0; i < 40; i++ {
					if _, err := zw.Write(zero); err != nil {
						return
					}
					if zw.Flush() != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
				zw.Close()
				pw.Close()
			}()
			req, _ := http.NewRequest("POST", "http://"+s.otlpHTTP+"/v1/metrics", pr)
			req.Header.Set("Authorization", "Bearer "+appToken)
			req.Header.Set("Content-Type", "application/x-protobuf")
			req.Header.Set("Content-Encoding", "gzip")
			resp, err := http.DefaultClient.Do(req)
			pr.CloseWithError(io.ErrClosedPipe)
			code := 0
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	peak := base
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-time.After(200 * time.Millisecond):
		}
		peak = max(peak, heap())
	}
	t.Logf("heap in use: %.1f MiB before, %.1f MiB peak; answers %v", base/(1<<20), peak/(1<<20), codes)
	if peak-base > slowGzipBound {
		t.Errorf("heap grew %.1f MiB under the slow-body attack, bound %d MiB", (peak-base)/(1<<20), slowGzipBound>>20)
	}
	if codes[http.StatusTooManyRequests] == 0 {
		t.Errorf("no 429 for the connections past the in-flight cap: %v", codes)
	}
	if code, body := postOTLP(t, s.otlpHTTP, appToken, forged(time.Now(), "ride")); code != http.StatusOK {
		t.Fatalf("an honest export after the attack: %d %s", code, body)
	}
}
