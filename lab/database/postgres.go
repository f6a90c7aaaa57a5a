package database

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/grayzone/grayzone/internal/freeport"
)

// PostgresOptions configure StartPostgres.
type PostgresOptions struct {
	// BinDir holds initdb and postgres; empty means search PATH, then
	// /usr/lib/postgresql/*/bin (newest version first).
	BinDir string
	// StartTimeout bounds initdb plus server start; 0 means 60 s.
	StartTimeout time.Duration
}

// PostgresUser and PostgresDatabase name the superuser and database of a
// throwaway cluster.
const (
	PostgresUser     = "grayzone"
	PostgresDatabase = "postgres"
)

// Cluster is a throwaway PostgreSQL cluster: its own temp directory, server
// process and loopback port.
type Cluster struct {
	dir  string
	addr string
	cmd  *exec.Cmd

	exited  chan struct{} // closed when the server process is reaped
	waitErr error         // set before exited is closed
	logBuf  *syncBuffer

	stopOnce  sync.Once
	stopErr   error
	stopWatch chan struct{}
}

// syncBuffer collects server output for error messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Keep the tail: a long-running server logs a lot.
	if b.buf.Len() > 64<<10 {
		tail := slices.Clone(b.buf.Bytes()[b.buf.Len()-16<<10:])
		b.buf.Reset()
		b.buf.Write(tail)
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// pgBinaries are the server programs a cluster needs.
type pgBinaries struct {
	initdb, postgres string
}

func findBinaries(binDir string) (pgBinaries, error) {
	inDir := func(dir string) (pgBinaries, bool) {
		b := pgBinaries{initdb: filepath.Join(dir, "initdb"), postgres: filepath.Join(dir, "postgres")}
		for _, p := range []string{b.initdb, b.postgres} {
			if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				return pgBinaries{}, false
			}
		}
		return b, true
	}
	if binDir != "" {
		if b, ok := inDir(binDir); ok {
			return b, nil
		}
		return pgBinaries{}, fmt.Errorf("postgres: initdb and postgres not found in %s", binDir)
	}
	// On PATH, take the directory of the real initdb (Debian links
	// /usr/bin/initdb-style names to the versioned directory) so initdb and
	// postgres come from one version.
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			if b, ok := inDir(filepath.Dir(real)); ok {
				return b, nil
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first.
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, dir := range dirs {
		if b, ok := inDir(dir); ok {
			return b, nil
		}
	}
	return pgBinaries{}, errors.New("postgres: server binaries not found: need initdb and postgres on PATH or in /usr/lib/postgresql/*/bin (e.g. apt-get install postgresql)")
}

// runAs is the account the server runs under: PostgreSQL refuses to run as
// root, so root hands it to the postgres user.
type runAs struct {
	cred     *syscall.Credential // nil: run as ourselves
	uid, gid int
	home     string
}

func serverAccount() (runAs, error) {
	if os.Geteuid() != 0 {
		return runAs{uid: -1, gid: -1}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return runAs{}, fmt.Errorf("postgres: running as root needs a 'postgres' user to run the server as: %w", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return runAs{}, fmt.Errorf("postgres: user postgres has non-numeric uid %q / gid %q", u.Uid, u.Gid)
	}
	return runAs{
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
		uid:  uid,
		gid:  gid,
		home: u.HomeDir,
	}, nil
}

// PostgresAvailable reports whether StartPostgres can run here.
func PostgresAvailable() bool { return CheckPostgres() == nil }

// CheckPostgres says what StartPostgres (with default options) lacks here,
// or nil.
func CheckPostgres() error {
	if _, err := findBinaries(""); err != nil {
		return err
	}
	_, err := serverAccount()
	return err
}

// StartPostgres initialises a throwaway cluster in a temp directory and
// starts it on a free loopback port, tuned for speed over durability. It
// stops, and removes every file, on Stop or when ctx is done.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Cluster, error) {
	bins, err := findBinaries(opts.BinDir)
	if err != nil {
		return nil, err
	}
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	startCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "grayzone-pg-")
	if err != nil {
		return nil, fmt.Errorf("postgres: temp dir: %w", err)
	}
	cleanup := func() { _ = os.RemoveAll(dir) }
	if acct.cred != nil {
		if err := os.Chown(dir, acct.uid, acct.gid); err != nil {
			cleanup()
			return nil, fmt.Errorf("postgres: chown %s to postgres: %w", dir, err)
		}
	}
	dataDir := filepath.Join(dir, "data")

	initOut, err := runCmd(startCtx, acct, dir, bins.initdb,
		"--pgdata="+dataDir, "--username="+PostgresUser, "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("postgres: initdb: %w\n%s", err, initOut)
	}

	// The port is picked by the kernel, then released for postgres to bind;
	// another process may grab it in between, so retry a few times.
	var c *Cluster
	for attempt := 0; ; attempt++ {
		c, err = startServer(startCtx, acct, bins, dir, dataDir)
		if err == nil {
			break
		}
		portTaken := strings.Contains(err.Error(), "could not bind") || strings.Contains(err.Error(), "could not create any TCP/IP sockets")
		if attempt >= 2 || startCtx.Err() != nil || !portTaken {
			cleanup()
			return nil, err
		}
	}
	go func() {
		select {
		case <-ctx.Done():
			_ = c.Stop()
		case <-c.stopWatch:
		}
	}()
	return c, nil
}

func startServer(ctx context.Context, acct runAs, bins pgBinaries, dir, dataDir string) (*Cluster, error) {
	port, err := freeport.Port()
	if err != nil {
		return nil, fmt.Errorf("postgres: pick a port: %w", err)
	}
	logBuf := &syncBuffer{}
	cmd := exec.Command(bins.postgres,
		"-D", dataDir,
		"-p", strconv.Itoa(port),
		"-k", dir, // unix socket inside our temp dir, not /var/run
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
		"-c", "shared_buffers=32MB",
		"-c", "dynamic_shared_memory_type=mmap",
		"-c", "logging_collector=off",
		"-c", "log_min_messages=warning",
	)
	setupCmd(cmd, acct, dir)
	cmd.Stdout = logBuf
	cmd.Stderr = logBuf
	c := &Cluster{
		dir:       dir,
		addr:      net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		cmd:       cmd,
		exited:    make(chan struct{}),
		logBuf:    logBuf,
		stopWatch: make(chan struct{}),
	}
	started := make(chan error, 1)
	go func() {
		err := runLocked(cmd, started)
		if err != nil {
			return
		}
		c.waitErr = cmd.Wait()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("postgres: start server: %w", err)
	}
	if err := c.waitReady(ctx); err != nil {
		c.kill()
		return nil, err
	}
	return c, nil
}

// waitReady polls until the server accepts a connection, exits, or ctx ends.
func (c *Cluster) waitReady(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgconn.Connect(attemptCtx, c.URL())
		cancel()
		if err == nil {
			_ = conn.Close(ctx)
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("postgres: server exited during start (%v):\n%s", c.waitErr, c.logBuf.String())
		case <-ctx.Done():
			return fmt.Errorf("postgres: server not ready: %w (last error: %v)\n%s", ctx.Err(), err, c.logBuf.String())
		case <-tick.C:
		}
	}
}

func setupCmd(cmd *exec.Cmd, acct runAs, dir string) {
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	// Own process group: a terminal's Ctrl-C reaches us, and we shut the
	// server down properly. Pdeathsig: if we die anyway, so does it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	if acct.cred != nil {
		cmd.SysProcAttr.Credential = acct.cred
		cmd.Env = append(cmd.Env, "HOME="+acct.home, "USER=postgres", "LOGNAME=postgres")
	}
}

func runCmd(ctx context.Context, acct runAs, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	setupCmd(cmd, acct, dir)
	// initdb runs a bootstrap postgres child: kill the whole group.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		if err := runLocked(cmd, started); err != nil {
			return
		}
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return "", err
	}
	err := <-done
	return out.String(), err
}

// runLocked locks the calling goroutine to its OS thread, starts cmd and
// reports the result on started; the goroutine must then wait for cmd.
// Pdeathsig fires when the thread that forked the child exits, not the
// process, and a thread ends whenever some goroutine exits while locked to
// it; holding the thread keeps the server alive exactly as long as we are.
func runLocked(cmd *exec.Cmd, started chan<- error) error {
	runtime.LockOSThread()
	// Deliberately no UnlockOSThread: the thread ends with the goroutine,
	// after the child has exited.
	err := cmd.Start()
	started <- err
	return err
}

// URL is a pgx connection string for the cluster (plaintext, as the lab's
// database link needs).
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", PostgresUser, c.addr, PostgresDatabase)
}

// Addr is the server's host:port.
func (c *Cluster) Addr() string { return c.addr }

// Stop shuts the server down and removes the cluster's files. It is safe to
// call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		close(c.stopWatch)
		c.kill()
		if err := os.RemoveAll(c.dir); err != nil {
			c.stopErr = fmt.Errorf("postgres: remove %s: %w", c.dir, err)
		}
	})
	return c.stopErr
}

// kill stops the server: fast shutdown (SIGINT), then immediate (SIGQUIT),
// then SIGKILL to the whole process group.
func (c *Cluster) kill() {
	for _, step := range []struct {
		sig  syscall.Signal
		wait time.Duration
	}{{syscall.SIGINT, 10 * time.Second}, {syscall.SIGQUIT, 5 * time.Second}, {syscall.SIGKILL, 5 * time.Second}} {
		select {
		case <-c.exited:
			return
		default:
		}
		sig := step.sig
		if sig == syscall.SIGKILL {
			_ = syscall.Kill(-c.cmd.Process.Pid, sig) // children too
		} else {
			_ = c.cmd.Process.Signal(sig)
		}
		select {
		case <-c.exited:
			return
		case <-time.After(step.wait):
		}
	}
}
