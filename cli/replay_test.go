package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// emfIncident: 90 s of EMF lines, z2's instances failing a third from 40 s.
func emfIncident() string {
	t0 := time.Date(2026, 11, 29, 8, 30, 0, 0, time.UTC)
	var b strings.Builder
	for ms := 0; ms < 90_000; ms += 100 {
		for i, z := range []string{"z1", "z1", "z2", "z2", "z3", "z3"} {
			fault := 0
			if z == "z2" && ms >= 40_000 && (ms/100+i)%3 == 0 {
				fault = 1
			}
			fmt.Fprintf(&b, `{"_aws":{"Timestamp":%d,"CloudWatchMetrics":[{"Dimensions":[["AZ-ID"]],"Metrics":[{"Name":"SuccessLatency","Unit":"Milliseconds"},{"Name":"Success"},{"Name":"Fault"}]}]},"AZ-ID":%q,"InstanceId":"i-%d","Operation":"ride","SuccessLatency":4,"Success":%d,"Fault":%d}`+"\n",
				t0.Add(time.Duration(ms)*time.Millisecond).UnixMilli(), z, i, 1-fault, fault)
		}
	}
	return b.String()
}

func TestReplayEMFIsDeterministicWithHTML(t *testing.T) {
	cfg := filepath.Join("..", "replay", "testdata", "serve.yaml")
	log := writeFile(t, "app.log", emfIncident())
	html := filepath.Join(t.TempDir(), "replay.html")
	code, first, stderr := run(t, "replay", "--config", cfg, "--from", "emf:"+log, "--output", "json", "--html", html)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(first, `"alarm": "z2-isolated-impact"`) || !strings.Contains(first, `"away_from": "z2"`) {
		t.Fatalf("no detection or shift of z2:\n%.2000s", first)
	}
	if b, err := os.ReadFile(html); err != nil || !strings.Contains(string(b), "<html") {
		t.Errorf("html report: %v", err)
	}
	_, second, _ := run(t, "replay", "--config", cfg, "--from", "emf:"+log, "--output", "json")
	if first != second {
		t.Error("two replays of one log differ")
	}
	code, text, _ := run(t, "replay", "--config", cfg, "--from", "emf:"+log, "--detector", "cloudwatch")
	if code != 0 || !strings.Contains(text, "detector cloudwatch") {
		t.Errorf("--detector cloudwatch: exit %d\n%s", code, text)
	}
	code, _, stderr = run(t, "replay", "--config", cfg, "--from", "statsd:x")
	if code != 2 || !strings.Contains(stderr, `unknown source "statsd"`) {
		t.Errorf("bad --from: exit %d: %s", code, stderr)
	}
}
