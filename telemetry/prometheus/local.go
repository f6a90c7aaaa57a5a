package prometheus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Binary is where Debian installs Prometheus.
const Binary = "/usr/bin/prometheus"

// ErrNoPrometheus: Binary is not installed.
var ErrNoPrometheus = errors.New("prometheus is not installed at " + Binary + " (apt-get install prometheus)")

// Local is a throwaway Prometheus server on loopback scraping the given
// targets (host:port, honoring their labels) every interval; the lab and
// the tests run the real thing through it.
type Local struct {
	URL  string
	cmd  *exec.Cmd
	logs strings.Builder
}

// StartLocal starts Prometheus with its data in dir and waits until it is ready.
func StartLocal(ctx context.Context, dir string, targets []string, interval time.Duration) (*Local, error) {
	if _, err := os.Stat(Binary); err != nil {
		return nil, ErrNoPrometheus
	}
	var hosts []string
	for _, t := range targets {
		hosts = append(hosts, fmt.Sprintf("%q", strings.TrimPrefix(t, "http://")))
	}
	cfg := fmt.Sprintf("global: {scrape_interval: %s, evaluation_interval: %s}\nscrape_configs:\n  - job_name: grayzone\n    honor_labels: true\n    static_configs: [{targets: [%s]}]\n",
		interval, interval, strings.Join(hosts, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	p := &Local{URL: "http://" + addr}
	p.cmd = exec.CommandContext(ctx, Binary, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	p.cmd.Stdout, p.cmd.Stderr = &p.logs, &p.logs
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("prometheus: start: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.Close()
			return nil, fmt.Errorf("prometheus did not become ready: %s", p.logs.String())
		}
		time.Sleep(100 * time.Millisecond) // waiting on another process's startup
	}
}

// Close stops the server.
func (p *Local) Close() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}
