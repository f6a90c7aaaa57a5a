package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad --advertise and an unreadable store_file are usage errors: one line
// naming the flag or key, exit 2, nothing started. The store URL (with its
// password) is never echoed.
func TestServeStoreFileAndAdvertiseErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, "serve.yaml", `listen: 127.0.0.1:0
data_dir: `+dir+`
auth: {tokens: [test-token-0123456789abcdef]}
store_file: dsn
resources:
  - name: web
    zones: [z1, z2]
    frontdoor:
      type: embedded
      regional: 127.0.0.1:0
      zonal: {z1: 127.0.0.1:0, z2: 127.0.0.1:0}
      targets:
        - {id: a1, zone: z1, addr: 127.0.0.1:9}
        - {id: a2, zone: z1, addr: 127.0.0.1:19}
        - {id: b1, zone: z2, addr: 127.0.0.1:29}
        - {id: b2, zone: z2, addr: 127.0.0.1:39}
`)
	dsn := filepath.Join(filepath.Dir(cfg), "dsn")
	for _, tc := range []struct {
		args []string
		dsn  string // written to store_file first ("": none)
		want string
	}{
		{[]string{"--advertise", "10.0.0.1"}, "", `--advertise "10.0.0.1": want host:port`},
		{[]string{"--advertise", ":8080"}, "", `--advertise ":8080": want host:port`},
		{[]string{"--tick-workers", "-1"}, "", `--tick-workers -1: want 0 (GOMAXPROCS) or more`},
		{nil, "", "store_file: open " + dsn + ": no such file or directory"},
		{nil, "mysql://gz:hunter2-secret@db/gz", "store_file: " + dsn + " does not hold one postgres:// URL"},
	} {
		if tc.dsn != "" {
			writeAt(t, dsn, tc.dsn)
		}
		code, _, stderr := run(t, append([]string{"serve", "--config", cfg}, tc.args...)...)
		line := strings.TrimSpace(stderr)
		if code != 2 || !strings.Contains(line, tc.want) || strings.Contains(line, "\n") || strings.Contains(line, "hunter2") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and one line with %q", tc.args, code, stderr, tc.want)
		}
	}
}

func writeAt(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestServeTelemetryWithoutCredentials: a telemetry listener that could
// authenticate nobody (no token with the ingest scope, no insecure: true)
// is a usage error naming the source's address: exit 2, one line, nothing
// started — on 0.0.0.0 (open to the network) and on loopback alike.
func TestServeTelemetryWithoutCredentials(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ auth, source, want string }{
		{`{tokens: ["ops:test-token-0123456789abcdef:operate,read"]}`, "{type: otlp, http: 0.0.0.0:0}",
			"resources[0].telemetry.sources[0].http: 0.0.0.0:0 is not a loopback address: it would take telemetry from the network without credentials; no token has the ingest scope"},
		{`{open_reads: true}`, "{type: emf, listen: 127.0.0.1:0}",
			"resources[0].telemetry.sources[0].listen: 127.0.0.1:0 is a loopback address, where it would refuse every request"},
	} {
		cfg := writeFile(t, "serve.yaml", `listen: 127.0.0.1:0
data_dir: `+dir+`
auth: `+tc.auth+`
resources:
  - name: web
    zones: [z1, z2]
    frontdoor:
      type: embedded
      regional: 127.0.0.1:0
      zonal: {z1: 127.0.0.1:0, z2: 127.0.0.1:0}
      targets:
        - {id: a1, zone: z1, addr: 127.0.0.1:9}
        - {id: a2, zone: z1, addr: 127.0.0.1:19}
        - {id: b1, zone: z2, addr: 127.0.0.1:29}
        - {id: b2, zone: z2, addr: 127.0.0.1:39}
    telemetry:
      sources: [`+tc.source+`]
`)
		code, _, stderr := run(t, "serve", "--config", cfg)
		line := strings.TrimSpace(stderr)
		if code != 2 || !strings.Contains(line, tc.want) || strings.Contains(line, "\n") {
			t.Errorf("%s: exit %d, stderr %q; want 2 and one line with %q", tc.source, code, stderr, tc.want)
		}
	}
}
