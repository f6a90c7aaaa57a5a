package cli

import (
	"strings"
	"testing"
)

// bench detect --corpus day on one short day, the default profile only and
// no unmitigated run: the table has one profile column and says there was
// no run without mitigation; the progress line names the day's real fault.
func TestBenchCorpusProfileAndNoBaseline(t *testing.T) {
	code, stdout, stderr := run(t, "bench", "detect", "--corpus", "day", "--first-seed", "2", "--days", "1", "--day-length", "30m",
		"--profile", "default", "--no-baseline", "--parallel", "1")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "| | default |\n") || strings.Contains(stdout, "cloudwatch") || !strings.Contains(stdout, "No run without mitigation") {
		t.Errorf("table:\n%s", stdout)
	}
	if !strings.Contains(stderr, "day-002 default") || !strings.Contains(stderr, "episode(s)") {
		t.Errorf("progress:\n%s", stderr)
	}
	if code, _, stderr := run(t, "bench", "detect", "--corpus", "day", "--days", "1", "--profile", "fast"); code != 2 || !strings.Contains(stderr, "--profile fast") {
		t.Errorf("--profile fast: exit %d, %s", code, stderr)
	}
}
