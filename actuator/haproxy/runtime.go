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
	out, err := r.Do(ctx, serversStateCommands(backends)...)
	if err != nil {
		return nil, err
	}
	return serversStates(backends, out)
}

func serversStateCommands(backends []string) []string {
	cmds := make([]string, len(backends))
	for i, b := range backends {
		cmds[i] = "show servers state " + b
	}
	return cmds
}

// serversStates reads the answers of serversStateCommands(backends).
func serversStates(backends []string, out string) (map[string][]ServerState, error) {
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

// setStateCommands are the `set server` commands that put each listed
// server in its state (the map's key).
func setStateCommands(byState map[string][]Server) []string {
	var cmds []string
	for _, state := range sortedKeys(byState) {
		for _, s := range byState[state] {
			cmds = append(cmds, fmt.Sprintf("set server %s/%s state %s", s.Backend, s.Name, state))
		}
	}
	return cmds
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
	cmds := setStateCommands(byState)
	if len(cmds) == 0 {
		return nil
	}
	return r.Command(ctx, cmds...)
}

// Session is one connection to the runtime API in interactive mode
// (`prompt`): HAProxy answers each command and keeps the connection open,
// so an exchange can read, decide, then write over the same connection
// (the epoch check, then the orders it allows). Not safe for concurrent use.
type Session struct {
	addr   string
	c      net.Conn
	r      *bufio.Reader
	prompt bool // "prompt" is still to send, with the first commands
	stop   func() bool
}

// Open connects; interactive mode is turned on with the first commands
// (in the same write: no round trip of its own). The session ends when ctx
// is done or after the Runtime's timeout, whichever comes first.
func (r Runtime) Open(ctx context.Context) (*Session, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	dl := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	network, addr := r.network()
	d := net.Dialer{Deadline: dl}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("haproxy runtime API %s: %w", r.Addr, err)
	}
	_ = c.SetDeadline(dl)
	// ctx ending (the leadership's context) cuts the session short.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	return &Session{addr: r.Addr, c: c, r: bufio.NewReader(c), prompt: true, stop: stop}, nil
}

// Do sends the commands in one write and returns their answers, one per
// command, in order (HAProxy runs them in order, each on its own).
func (s *Session) Do(cmds ...string) ([]string, error) {
	for _, cmd := range cmds {
		if strings.ContainsAny(cmd, ";\n") {
			return nil, fmt.Errorf("haproxy runtime API: command %q must not contain ';' or a newline", cmd)
		}
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	send := cmds
	if s.prompt {
		send = append([]string{"prompt"}, cmds...)
	}
	if _, err := io.WriteString(s.c, strings.Join(send, "\n")+"\n"); err != nil {
		return nil, fmt.Errorf("haproxy runtime API %s: %w", s.addr, err)
	}
	if s.prompt {
		if _, err := s.answer(); err != nil {
			return nil, fmt.Errorf("haproxy runtime API %s: prompt: %w", s.addr, err)
		}
		s.prompt = false
	}
	out := make([]string, len(cmds))
	for i := range cmds {
		a, err := s.answer()
		if err != nil {
			return nil, fmt.Errorf("haproxy runtime API %s: %s: %w", s.addr, cmds[i], err)
		}
		out[i] = a
	}
	return out, nil
}

// answer reads one answer of interactive mode: its lines (none for a
// success without output), an empty line, then the prompt "> ".
func (s *Session) answer() (string, error) {
	var b strings.Builder
	b.WriteByte('\n') // an answer without lines ends at once
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			return "", err
		}
		b.WriteByte(c)
		if c == ' ' && strings.HasSuffix(b.String(), "\n\n> ") {
			return strings.TrimSuffix(b.String()[1:], "\n> "), nil
		}
	}
}

// Close ends the session.
func (s *Session) Close() error {
	s.stop()
	return s.c.Close()
}
