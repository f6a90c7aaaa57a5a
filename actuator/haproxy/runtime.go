package haproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Runtime speaks HAProxy's runtime API (the "stats socket" at admin level)
// in its non-interactive mode: one connection per batch of commands, which
// HAProxy answers and then closes.
type Runtime struct {
	// Addr is a unix socket path (absolute, or "unix@PATH") or a TCP
	// host:port ("ipv4@" prefix allowed, as in haproxy.cfg).
	Addr    string
	Timeout time.Duration // per batch (default 2s)
}

// network splits Addr into net.Dial's network and address.
func (r Runtime) network() (string, string) {
	a := r.Addr
	switch {
	case strings.HasPrefix(a, "unix@"):
		return "unix", strings.TrimPrefix(a, "unix@")
	case strings.HasPrefix(a, "/"), strings.HasPrefix(a, "./"):
		return "unix", a
	case strings.HasPrefix(a, "ipv4@"), strings.HasPrefix(a, "ipv6@"):
		return "tcp", a[5:]
	}
	return "tcp", a
}

// Do sends the commands (joined with ";", which HAProxy runs in order) and
// returns the whole answer.
func (r Runtime) Do(ctx context.Context, cmds ...string) (string, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	network, addr := r.network()
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API %s: %w", r.Addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	for _, cmd := range cmds {
		if strings.ContainsAny(cmd, ";\n") {
			return "", fmt.Errorf("haproxy runtime API: command %q must not contain ';' or a newline", cmd)
		}
	}
	if _, err := io.WriteString(c, strings.Join(cmds, ";")+"\n"); err != nil {
		return "", fmt.Errorf("haproxy runtime API %s: %w", r.Addr, err)
	}
	out, err := io.ReadAll(c)
	if err != nil {
		return "", fmt.Errorf("haproxy runtime API %s: read: %w", r.Addr, err)
	}
	return string(out), nil
}

// Admin state bits of `show servers state` (srv_admin_state), from
// HAProxy's include/haproxy/server-t.h.
const (
	adminForcedMaint = 0x01 // set server ... state maint
	adminForcedDrain = 0x08 // set server ... state drain
)

// ServerState is one row of `show servers state`.
type ServerState struct {
	Backend, Server string
	Addr            string
	OpState         int // 0 stopped, 1 starting, 2 running, 3 stopping
	AdminState      int // bit field (adminForcedMaint, adminForcedDrain, ...)
	// UWeight is the weight in force, IWeight the one in haproxy.cfg.
	UWeight, IWeight int
}

// Drained reports whether the server was put in drain by the runtime API.
func (s ServerState) Drained() bool { return s.AdminState&adminForcedDrain != 0 }

// Maint reports whether the server was put in maintenance by the runtime API.
func (s ServerState) Maint() bool { return s.AdminState&adminForcedMaint != 0 }

// ErrNoBackend is returned by ServersState for a backend HAProxy does not have.
var ErrNoBackend = errors.New("no such backend")

// ServersState reads `show servers state BACKEND`.
func (r Runtime) ServersState(ctx context.Context, backend string) ([]ServerState, error) {
	by, err := r.ServersStates(ctx, backend)
	return by[backend], err
}

// ServersStates reads `show servers state` of each backend in one
// connection (one round trip, however many backends) and returns the rows
// by backend.
func (r Runtime) ServersStates(ctx context.Context, backends ...string) (map[string][]ServerState, error) {
	cmds := make([]string, len(backends))
	for i, b := range backends {
		cmds[i] = "show servers state " + b
	}
	out, err := r.Do(ctx, cmds...)
	if err != nil {
		return nil, err
	}
	rows, err := parseServersState(strings.Join(backends, ","), out)
	if err != nil {
		return nil, err
	}
	by := make(map[string][]ServerState, len(backends))
	for _, b := range backends {
		by[b] = nil
	}
	for _, row := range rows {
		by[row.Backend] = append(by[row.Backend], row)
	}
	return by, nil
}

// parseServersState reads the answer: a format version line ("1"), a
// "# be_id be_name ..." header naming the columns, then one row per server.
func parseServersState(backend, out string) ([]ServerState, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	var cols map[string]int
	var rows []ServerState
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line == "1":
			continue
		case strings.Contains(line, "Can't find backend"):
			return nil, fmt.Errorf("haproxy: backend %q: %w", backend, ErrNoBackend)
		case strings.HasPrefix(line, "# "):
			cols = map[string]int{}
			for i, name := range strings.Fields(line[2:]) {
				cols[name] = i
			}
			continue
		case cols == nil:
			return nil, fmt.Errorf("haproxy: show servers state %s: %s", backend, line)
		}
		f := strings.Fields(line)
		get := func(name string) string {
			if i, ok := cols[name]; ok && i < len(f) {
				return f[i]
			}
			return ""
		}
		op, err1 := strconv.Atoi(get("srv_op_state"))
		adm, err2 := strconv.Atoi(get("srv_admin_state"))
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("haproxy: show servers state %s: unreadable row %q", backend, line)
		}
		uw, _ := strconv.Atoi(get("srv_uweight"))
		iw, _ := strconv.Atoi(get("srv_iweight"))
		rows = append(rows, ServerState{Backend: get("be_name"), Server: get("srv_name"), Addr: get("srv_addr"), OpState: op, AdminState: adm,
			UWeight: uw, IWeight: iw})
	}
	if cols == nil {
		return nil, fmt.Errorf("haproxy: show servers state %s: no header in the answer", backend)
	}
	return rows, nil
}

// SetState runs `set server BACKEND/SERVER state STATE` for each server, in
// one connection. HAProxy answers an empty line per success; anything else
// is an error message ("No such server.").
func (r Runtime) SetState(ctx context.Context, state string, servers ...Server) error {
	return r.SetStates(ctx, map[string][]Server{state: servers})
}

// SetStates sets every listed server to its state (the map's key) in one
// connection: the shift state and "ready" of a reconcile cost one round trip.
func (r Runtime) SetStates(ctx context.Context, byState map[string][]Server) error {
	var cmds []string
	for _, state := range sortedKeys(byState) {
		for _, s := range byState[state] {
			cmds = append(cmds, fmt.Sprintf("set server %s/%s state %s", s.Backend, s.Name, state))
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	return r.Command(ctx, cmds...)
}
