package store

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

func open(t *testing.T, dir string) *DB {
	t.Helper()
	d, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestOpenSettingsAndMigrations(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "state") // Open creates it
	d := open(t, dir)
	if d.Path() != filepath.Join(dir, FileName) {
		t.Fatalf("path = %s", d.Path())
	}
	// Every pooled connection has the durability settings, not just the first.
	var conns []*sql.Conn // held at once, so they are distinct connections
	for i := 0; i < 3; i++ {
		c, err := d.db.Conn(ctx)
		must(t, err)
		conns = append(conns, c)
	}
	for _, c := range conns {
		var mode string
		var sync, busy int
		must(t, c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
		must(t, c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync))
		must(t, c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy))
		if mode != "wal" || sync != 2 || busy != 5000 {
			t.Fatalf("journal_mode=%s synchronous=%d busy_timeout=%d", mode, sync, busy)
		}
		c.Close()
	}
	if v, err := d.SchemaVersion(ctx); err != nil || v != len(migrations) {
		t.Fatalf("schema version = %d, %v", v, err)
	}
	must(t, d.Close())

	// Reopening is idempotent.
	d = open(t, dir)
	var rows int
	must(t, d.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_version").Scan(&rows))
	if rows != len(migrations) {
		t.Fatalf("schema_version has %d rows after reopen", rows)
	}
	// A database from a newer binary is refused rather than misread.
	_, err := d.db.ExecContext(ctx, "INSERT INTO schema_version VALUES (?, 'x')", len(migrations)+1)
	must(t, err)
	must(t, d.Close())
	if _, err := Open(ctx, dir); err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("open of newer schema: %v", err)
	}
}

func TestShiftsRoundTrip(t *testing.T) { eachBackend(t, testShiftsRoundTrip) }

func testShiftsRoundTrip(t *testing.T, reopen func(t *testing.T) *DB) {
	ctx := context.Background()
	d := reopen(t)
	end := t0.Add(time.Hour).In(time.FixedZone("X", 3600))
	in := []shift.Shift{
		{ID: "a", Resource: "web", AwayFrom: "az1", Status: shift.Active, Origin: shift.Manual, Comment: "héllo",
			StartedBy: "alice", Reason: "r", StartedAt: t0, ExpiresAt: t0.Add(2 * time.Hour), UpdatedAt: t0},
		{ID: "b", Resource: "api", AwayFrom: "az2", Status: shift.Canceled, Origin: shift.Auto,
			StartedAt: t0.Add(time.Minute), ExpiresAt: t0.Add(3 * time.Hour), UpdatedAt: end, UpdatedBy: "u",
			EndedAt: &end, EndedBy: "bob"},
	}
	for _, s := range in {
		must(t, d.SaveShift(ctx, s))
	}
	// Upsert replaces.
	in[0].Comment, in[0].ExpiresAt = "changed", t0.Add(5*time.Hour)
	must(t, d.SaveShift(ctx, in[0]))
	must(t, d.Close())

	d = reopen(t)
	got, err := d.LoadShifts(ctx)
	must(t, err)
	if len(got) != 2 {
		t.Fatalf("loaded %d shifts", len(got))
	}
	for i := range in {
		want, _ := json.Marshal(in[i])
		have, _ := json.Marshal(got[i])
		if string(want) != string(have) {
			t.Errorf("round trip:\n got %s\nwant %s", have, want)
		}
		if !got[i].StartedAt.Equal(in[i].StartedAt) || got[i].StartedAt.Location() != time.UTC {
			t.Errorf("started_at %v, want %v in UTC (nanoseconds kept)", got[i].StartedAt, in[i].StartedAt)
		}
	}
}

// TestManagerOnDB is the restart story end to end: shifts started through a
// Manager on the database are found, with the same ids and expiry, by a new
// Manager on a reopened database.
func TestManagerOnDB(t *testing.T) { eachBackend(t, testManagerOnDB) }

func testManagerOnDB(t *testing.T, reopen func(t *testing.T) *DB) {
	res := []shift.Resource{{Name: "web", Zones: []string{"az1", "az2"}}}
	d := reopen(t)
	m, err := shift.NewManager(res, d, nil)
	must(t, err)
	s, err := m.Start(t0, shift.StartRequest{Resource: "web", AwayFrom: "az1", ExpiresIn: time.Hour, Comment: "c"})
	must(t, err)
	must(t, d.Close())

	d = reopen(t)
	m, err = shift.NewManager(res, d, nil)
	must(t, err)
	got, ok := m.Active("web")
	if !ok || got.ID != s.ID || !got.ExpiresAt.Equal(s.ExpiresAt) {
		t.Fatalf("after restart Active = %+v %v, want %+v", got, ok, s)
	}
	if exp := m.Expire(t0.Add(2 * time.Hour)); len(exp) != 1 || !exp[0].EndedAt.Equal(s.ExpiresAt) {
		t.Fatalf("Expire = %+v", exp)
	}
}

func TestAudit(t *testing.T) { eachBackend(t, testAudit) }

func testAudit(t *testing.T, reopen func(t *testing.T) *DB) {
	ctx := context.Background()
	d := reopen(t)
	var seqs []int64
	for i := 0; i < 6; i++ {
		res := []string{"web", "api"}[i%2]
		e, err := d.Append(ctx, AuditEntry{At: t0.Add(time.Duration(i) * time.Second), Kind: "decision", Resource: res,
			Zone: "az1", Actor: "grayzone", Message: fmt.Sprintf("m%d", i), Detail: json.RawMessage(`{"i":` + strconv.Itoa(i) + `}`)})
		must(t, err)
		if len(seqs) > 0 && e.Seq <= seqs[len(seqs)-1] {
			t.Fatalf("seq %d after %d", e.Seq, seqs[len(seqs)-1])
		}
		seqs = append(seqs, e.Seq)
	}
	// At defaults to now; Detail may be empty.
	e, err := d.Append(ctx, AuditEntry{Kind: "config", Message: "reloaded"})
	must(t, err)
	if e.At.IsZero() || e.Detail != nil {
		t.Fatalf("entry = %+v", e)
	}
	seqs = append(seqs, e.Seq)

	if _, err := d.Append(ctx, AuditEntry{Kind: "x", Detail: json.RawMessage(`{nope`)}); err == nil {
		t.Fatal("invalid detail accepted")
	}
	if _, err := d.Append(ctx, AuditEntry{Message: "no kind"}); err == nil {
		t.Fatal("empty kind accepted")
	}
	must(t, d.Close())
	d = reopen(t)

	seqsOf := func(es []AuditEntry) []int64 {
		var out []int64
		for _, e := range es {
			out = append(out, e.Seq)
		}
		return out
	}
	tests := []struct {
		q    AuditQuery
		want []int64
	}{
		{AuditQuery{}, []int64{seqs[6], seqs[5], seqs[4], seqs[3], seqs[2], seqs[1], seqs[0]}},
		{AuditQuery{Resource: "web"}, []int64{seqs[4], seqs[2], seqs[0]}},
		{AuditQuery{Resource: "api", Limit: 2}, []int64{seqs[5], seqs[3]}},
		{AuditQuery{After: seqs[4]}, []int64{seqs[6], seqs[5]}},
		{AuditQuery{Before: seqs[2], Limit: 1}, []int64{seqs[1]}},
		{AuditQuery{Resource: "web", After: seqs[0], Before: seqs[4]}, []int64{seqs[2]}},
		{AuditQuery{Resource: "db"}, nil},
	}
	for _, tt := range tests {
		got, err := d.Audit(ctx, tt.q)
		must(t, err)
		if fmt.Sprint(seqsOf(got)) != fmt.Sprint(tt.want) {
			t.Errorf("Audit(%+v) = %v, want %v", tt.q, seqsOf(got), tt.want)
		}
	}
	got, err := d.Audit(ctx, AuditQuery{Resource: "web", Limit: 1})
	must(t, err)
	if g := got[0]; g.Kind != "decision" || g.Zone != "az1" || g.Actor != "grayzone" || g.Message != "m4" ||
		string(g.Detail) != `{"i":4}` || !g.At.Equal(t0.Add(4*time.Second)) {
		t.Fatalf("entry = %+v", g)
	}

	// Append-only, even for SQL that bypasses the API.
	for _, q := range []string{
		"UPDATE audit SET message = 'forged' WHERE seq = 1",
		"DELETE FROM audit WHERE seq = 1",
		"DELETE FROM audit",
	} {
		if _, err := d.db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: err = %v, want append-only", q, err)
		}
	}
	all, _ := d.Audit(ctx, AuditQuery{})
	if len(all) != 7 || all[6].Message != "m0" {
		t.Fatalf("audit changed: %+v", all)
	}
}

func TestConcurrentAppends(t *testing.T) { eachBackend(t, testConcurrentAppends) }

func testConcurrentAppends(t *testing.T, reopen func(t *testing.T) *DB) {
	ctx := context.Background()
	d := reopen(t)
	const workers, each = 8, 25
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			last := int64(0)
			for i := 0; i < each; i++ {
				e, err := d.Append(ctx, AuditEntry{Kind: "action", Resource: fmt.Sprint("r", w), Message: fmt.Sprint(i)})
				if err != nil {
					t.Error(err)
					return
				}
				// Each writer sees its own entries in increasing order.
				if e.Seq <= last {
					t.Errorf("worker %d: seq %d after %d", w, e.Seq, last)
				}
				last = e.Seq
				mu.Lock()
				if seen[e.Seq] {
					t.Errorf("seq %d assigned twice", e.Seq)
				}
				seen[e.Seq] = true
				mu.Unlock()
				if i%5 == 0 { // interleave readers and other writers
					if _, err := d.Audit(ctx, AuditQuery{Limit: 5}); err != nil {
						t.Error(err)
					}
					if err := d.PutState(ctx, fmt.Sprint("k", w), []byte{byte(i)}); err != nil {
						t.Error(err)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	all, err := d.Audit(ctx, AuditQuery{Limit: MaxLimit})
	must(t, err)
	if len(all) != workers*each || len(seen) != workers*each {
		t.Fatalf("%d entries stored, %d acknowledged, want %d", len(all), len(seen), workers*each)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq >= all[i-1].Seq {
			t.Fatalf("not newest first at %d", i)
		}
	}
}

func TestPractices(t *testing.T) { eachBackend(t, testPractices) }

func testPractices(t *testing.T, reopen func(t *testing.T) *DB) {
	ctx := context.Background()
	d := reopen(t)
	runs := []PracticeRun{
		{ID: "p1", Resource: "web", Zone: "az1", ShiftID: "s1", StartedAt: t0},
		{ID: "p2", Resource: "api", Zone: "az2", StartedAt: t0.Add(time.Hour), Outcome: PracticeCapacityCheckFailed, Reason: "min capacity"},
		{ID: "p3", Resource: "web", Zone: "az2", ShiftID: "s3", StartedAt: t0.Add(2 * time.Hour)},
	}
	for _, p := range runs {
		must(t, d.SavePractice(ctx, p))
	}
	// The run ends: saved again with its outcome.
	end := t0.Add(30 * time.Minute)
	runs[0].EndedAt, runs[0].Outcome = &end, PracticeSucceeded
	must(t, d.SavePractice(ctx, runs[0]))
	must(t, d.Close())
	d = reopen(t)

	ids := func(ps []PracticeRun) string {
		var out []string
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return strings.Join(out, ",")
	}
	for _, tt := range []struct {
		res   string
		limit int
		want  string
	}{{"", 0, "p3,p2,p1"}, {"web", 0, "p3,p1"}, {"web", 1, "p3"}, {"db", 0, ""}} {
		got, err := d.Practices(ctx, tt.res, tt.limit)
		must(t, err)
		if ids(got) != tt.want {
			t.Errorf("Practices(%q, %d) = %s, want %s", tt.res, tt.limit, ids(got), tt.want)
		}
	}
	got, _ := d.Practices(ctx, "web", 0)
	if p := got[1]; p.Outcome != PracticeSucceeded || p.EndedAt == nil || !p.EndedAt.Equal(end) || p.ShiftID != "s1" || !p.StartedAt.Equal(t0) {
		t.Fatalf("p1 = %+v", p)
	}
	if p := got[0]; p.EndedAt != nil || p.Outcome != "" {
		t.Fatalf("running p3 = %+v", p)
	}
}

func TestState(t *testing.T) { eachBackend(t, testState) }

func testState(t *testing.T, reopen func(t *testing.T) *DB) {
	ctx := context.Background()
	d := reopen(t)
	if v, ok, err := d.GetState(ctx, "runbook/web"); v != nil || ok || err != nil {
		t.Fatalf("missing key = %q %v %v", v, ok, err)
	}
	must(t, d.PutState(ctx, "runbook/web", []byte(`{"phase":"shifting"}`)))
	must(t, d.PutState(ctx, "runbook/web", []byte(`{"phase":"shifted"}`)))
	must(t, d.PutState(ctx, "bin", []byte{0, 1, 2, 255}))
	must(t, d.PutState(ctx, "empty", nil))
	if err := d.PutState(ctx, "", []byte("x")); err == nil {
		t.Fatal("empty key accepted")
	}
	must(t, d.Close())
	d = reopen(t)
	for k, want := range map[string]string{"runbook/web": `{"phase":"shifted"}`, "bin": "\x00\x01\x02\xff", "empty": ""} {
		v, ok, err := d.GetState(ctx, k)
		if err != nil || !ok || string(v) != want || v == nil {
			t.Errorf("GetState(%q) = %q %v %v, want %q", k, v, ok, err, want)
		}
	}
	// Many at once, in batches of a thousand; missing keys are absent.
	keys := []string{"runbook/web", "bin", "missing"}
	for i := range 1500 {
		keys = append(keys, fmt.Sprint("none/", i))
	}
	got, err := d.GetStates(ctx, keys)
	if err != nil || len(got) != 2 || string(got["runbook/web"]) != `{"phase":"shifted"}` || string(got["bin"]) != "\x00\x01\x02\xff" {
		t.Fatalf("GetStates = %q %v", got, err)
	}
}

const crashEnv = "GRAYZONE_STORE_CRASH_DIR"

// TestHelperWriter is the child of TestKill9: it writes until killed and
// prints a line for every acknowledged write.
func TestHelperWriter(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("helper process for TestKill9")
	}
	ctx := context.Background()
	d, err := Open(ctx, dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	round := os.Getenv(crashEnv + "_ROUND")
	for i := 0; ; i++ {
		e, err := d.Append(ctx, AuditEntry{Kind: "action", Resource: "web", Message: fmt.Sprint(round, "/", i)})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		id := fmt.Sprintf("r%s-%d", round, i)
		s := shift.Shift{ID: id, Resource: "web", AwayFrom: "az1", Status: shift.Active, Origin: shift.Auto,
			StartedAt: t0, ExpiresAt: t0.Add(time.Hour), UpdatedAt: t0}
		if err := d.SaveShift(ctx, s); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		if err := d.PutState(ctx, "progress/"+round, []byte(strconv.Itoa(i))); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Printf("ack %d %s %d\n", e.Seq, id, i)
	}
}

// TestKill9 kills a writer with SIGKILL mid-stream, several times over the
// same database, and checks that every acknowledged write survived and the
// database is sound.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns writer processes")
	}
	ctx := context.Background()
	dir := t.TempDir()
	type ack struct {
		seq   int64
		shift string
		i     int
	}
	var acks []ack
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir, fmt.Sprint(crashEnv, "_ROUND=", round))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		must(t, err)
		must(t, cmd.Start())
		sc := bufio.NewScanner(out)
		n, last := 0, -1
		killAt := 150 + 70*round // vary where in the stream the kill lands
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) > 0 && f[0] == "error" {
				t.Fatalf("writer: %s", sc.Text())
			}
			if len(f) != 4 || f[0] != "ack" {
				continue
			}
			seq, _ := strconv.ParseInt(f[1], 10, 64)
			i, _ := strconv.Atoi(f[3])
			acks = append(acks, ack{seq, f[2], i})
			last = i
			if n++; n == killAt {
				// Only the process we started.
				must(t, cmd.Process.Signal(syscall.SIGKILL))
			}
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("writer round %d ended with %v, not SIGKILL", round, err)
		}
		if n < killAt {
			t.Fatalf("writer round %d acknowledged only %d writes", round, n)
		}

		d, err := Open(ctx, dir)
		must(t, err)
		must(t, d.IntegrityCheck(ctx))
		v, ok, err := d.GetState(ctx, fmt.Sprint("progress/", round))
		must(t, err)
		if got, _ := strconv.Atoi(string(v)); !ok || got < last {
			t.Fatalf("round %d: progress %q, last acknowledged %d", round, v, last)
		}
		must(t, d.Close())
	}

	d := open(t, dir)
	seqs := map[int64]bool{}
	rows, err := d.db.QueryContext(ctx, "SELECT seq FROM audit")
	must(t, err)
	for rows.Next() {
		var s int64
		must(t, rows.Scan(&s))
		seqs[s] = true
	}
	must(t, rows.Err())
	rows.Close()
	shifts, err := d.LoadShifts(ctx)
	must(t, err)
	ids := map[string]bool{}
	for _, s := range shifts {
		ids[s.ID] = true
	}
	for _, a := range acks {
		if !seqs[a.seq] || !ids[a.shift] {
			t.Fatalf("acknowledged write lost: seq %d (present %v), shift %s (present %v)", a.seq, seqs[a.seq], a.shift, ids[a.shift])
		}
	}
	t.Logf("%d acknowledged writes across 3 kills all present", len(acks))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
