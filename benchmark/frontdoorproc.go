package benchmark

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/grayzone/grayzone/actuator/xds"
	"github.com/grayzone/grayzone/internal/certreload"
	"github.com/grayzone/grayzone/internal/certtest"
	"github.com/grayzone/grayzone/internal/freeport"
)

// frontDoorProcess is `grayzone frontdoor` as users deploy it: fed over xDS
// with mutual TLS (certificates made for the run) by an xDS server in the
// bench process (actuator/xds, what serve runs), with its own targets list,
// a state_file, its health checks, and the default connection cap and
// response timeout. One zone of benchZones per target.
type frontDoorProcess struct {
	XDS      *xds.Server
	Regional string // host:port of its regional endpoint
	cmd      *exec.Cmd
	stopXDS  func()
}

// mutualTLS makes a CA, serve's certificate (grayzone-xds) and the front
// door's under dir/certs, and returns the xDS server's TLS configuration.
func mutualTLS(dir string) (*tls.Config, error) {
	certs := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		return nil, err
	}
	ca, err := certtest.WriteCA(certs, "xds-ca")
	if err != nil {
		return nil, err
	}
	srvCertFile, srvKeyFile, err := ca.WriteIssued(certs, "grayzone-xds")
	if err != nil {
		return nil, err
	}
	if _, _, err := ca.WriteIssued(certs, "frontdoor"); err != nil {
		return nil, err
	}
	srvCert, err := certreload.NewCert(srvCertFile, srvKeyFile, time.Now)
	if err != nil {
		return nil, err
	}
	clientCAs, err := certreload.NewPool(ca.File, time.Now)
	if err != nil {
		return nil, err
	}
	return certreload.MutualServer(srvCert, clientCAs), nil
}

// startFrontDoorProcess starts exe's `frontdoor` in dir, pinned to cpu with
// taskset when cpu >= 0, with env added to the environment, and returns
// once its regional endpoint listens.
func startFrontDoorProcess(ctx context.Context, exe, dir string, cpu int, env []string, targets []xds.Target) (_ *frontDoorProcess, err error) {
	tlsConf, err := mutualTLS(dir)
	if err != nil {
		return nil, err
	}
	srv, stopXDS, err := startXDS(ctx, targets, tlsConf)
	if err != nil {
		return nil, err
	}
	p := &frontDoorProcess{XDS: srv, stopXDS: stopXDS}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	addrs := make([]string, 1+len(benchZones))
	for i := range addrs {
		if addrs[i], err = freeport.Loopback(); err != nil {
			return nil, err
		}
	}
	p.Regional = addrs[0]
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "resource: bench\nxds: %s\ntls: {ca_file: certs/xds-ca.crt, cert_file: certs/frontdoor.crt, key_file: certs/frontdoor.key, server_name: grayzone-xds}\n", srv.Addr())
	fmt.Fprintf(&cfg, "state_file: frontdoor-state.json\nregional: %s\nzonal:\n", addrs[0])
	for i, z := range benchZones {
		fmt.Fprintf(&cfg, "  %s: %s\n", z, addrs[i+1])
	}
	cfg.WriteString("targets:\n") // the front door routes only to targets it lists
	for _, t := range targets {
		fmt.Fprintf(&cfg, "  - {id: %s, zone: %s, addr: %s}\n", t.ID, t.Zone, t.Addr)
	}
	path := filepath.Join(dir, "frontdoor.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		return nil, err
	}
	args := []string{exe, "frontdoor", "--config", path, "--log-level", "warn"}
	if cpu >= 0 {
		// taskset (util-linux) binds the process before its first thread starts.
		args = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, args...)
	}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Stderr = os.Stderr
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // it dies with the bench
	if err := p.cmd.Start(); err != nil {
		p.cmd = nil
		return nil, fmt.Errorf("start %s frontdoor: %w", exe, err)
	}
	if err := waitFor(ctx, 20*time.Second, func() bool {
		c, err := net.Dial("tcp", addrs[0])
		if err == nil {
			c.Close()
		}
		return err == nil
	}); err != nil {
		return nil, fmt.Errorf("the front door process is not listening: %w", err)
	}
	return p, nil
}

func (p *frontDoorProcess) pid() int { return p.cmd.Process.Pid }

// close ends the process and the xDS server.
func (p *frontDoorProcess) close() {
	if p == nil {
		return
	}
	if p.cmd != nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
	p.stopXDS()
}
