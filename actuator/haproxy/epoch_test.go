package haproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/grayzone/grayzone/actuator"
)

// zoneStates reads which zones' regional servers are drained.
func zoneStates(t *testing.T, l *lab) map[string]int {
	t.Helper()
	rows, err := l.proc.Runtime.ServersState(context.Background(), RegionalBackend)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range rows {
		if r.Drained() {
			got[l.zoneOf[r.Server]]++
		}
	}
	return got
}

// epochRecord is HAProxy's epoch record, as "5" or "5,6".
func epochRecord(t *testing.T, l *lab) string {
	t.Helper()
	keys, err := l.proc.Runtime.EpochRecord(context.Background(), l.layout.EpochMap)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Trim(strings.Join(strings.Fields(fmt.Sprint(keys)), ","), "[]")
}

// TestEpochRecordRefusesOlderLeader: two writers share one real HAProxy,
// with epochs 5 and 6. Each order reads HAProxy's epoch record first: after
// 6 wrote, an order of 5 is refused (by a writer that never saw 6 itself:
// the check is against what HAProxy holds), HAProxy's servers stay as 6 set
// them, and the record shows 6.
func TestEpochRecordRefusesOlderLeader(t *testing.T) {
	l := startLab(t, "za", "zb")
	ctx := context.Background()
	ctx5, ctx6 := actuator.WithFence(ctx, 5), actuator.WithFence(ctx, 6)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	newWriter := func() *Actuator {
		a, err := New(Options{Runtime: l.proc.Runtime, Zones: l.layout.Zones(), Log: log})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	old := newWriter()
	if err := old.SetShifted(ctx5, "za", true); err != nil {
		t.Fatal(err)
	}
	if got := epochRecord(t, l); got != "5" {
		t.Fatalf("after epoch 5's shift the record is %q, want 5", got)
	}
	if got := zoneStates(t, l); got["za"] != 2 || got["zb"] != 0 {
		t.Fatalf("epoch 5 drained za: %v", got)
	}

	// Epoch 6 takes over: its state is zb away. Its reconcile writes the
	// servers and the record (and drops 5 from it).
	leader := newWriter()
	if err := leader.SetShifted(ctx6, "zb", true); err != nil {
		t.Fatal(err)
	}
	if n, err := leader.Reconcile(ctx6); err != nil || n != 2 {
		t.Fatalf("epoch 6's reconcile: %d changed, %v; want za's 2 made ready", n, err)
	}
	if got := epochRecord(t, l); got != "6" {
		t.Fatalf("after epoch 6 wrote the record is %q, want 6", got)
	}
	want := map[string]int{"zb": 2}
	if got := zoneStates(t, l); got["za"] != 0 || got["zb"] != 2 {
		t.Fatalf("epoch 6 set %v, want %v", got, want)
	}

	// A deposed writer of epoch 5 (a fresh one: it has no memory of 6).
	stale := newWriter()
	if err := stale.SetShifted(ctx5, "za", true); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("epoch 5's shift after 6 wrote: %v, want ErrStaleEpoch", err)
	}
	if _, err := stale.Reconcile(ctx5); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("epoch 5's reconcile after 6 wrote: %v, want ErrStaleEpoch", err)
	}
	// And the first writer of 5, whose reconcile would restore its za drain.
	if _, err := old.Reconcile(ctx5); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("the old leader's reconcile: %v, want ErrStaleEpoch", err)
	}
	if got := zoneStates(t, l); got["za"] != 0 || got["zb"] != 2 {
		t.Fatalf("after epoch 5's refused orders HAProxy has %v drained, want %v as epoch 6 set it", got, want)
	}
	if got := epochRecord(t, l); got != "6" {
		t.Fatalf("the record is %q, want 6", got)
	}
	if stale.EpochRefusals() != 2 || old.EpochRefusals() != 1 || leader.EpochRefusals() != 0 {
		t.Fatalf("refusals: stale %d, old %d, leader %d", stale.EpochRefusals(), old.EpochRefusals(), leader.EpochRefusals())
	}
	if n := strings.Count(logs.String(), "order refused"); n != 2 {
		t.Fatalf("%d refusal log lines, want one per writer (2):\n%s", n, logs.String())
	}
	// The leader goes on under 6; a later leader of 7 supersedes it alike.
	if n, err := leader.Reconcile(ctx6); err != nil || n != 0 {
		t.Fatalf("epoch 6's next reconcile: %d, %v", n, err)
	}
	next := newWriter()
	if _, err := next.Reconcile(actuator.WithFence(ctx, 7)); err != nil {
		t.Fatal(err)
	}
	if got := epochRecord(t, l); got != "7" {
		t.Fatalf("the record is %q, want 7", got)
	}
	if err := leader.SetShifted(ctx6, "za", true); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("epoch 6 after 7: %v", err)
	}
}

// TestEpochRecordForgottenByReloadIsWrittenAgain: a reload reloads the map
// from its (empty) file; the leader's next reconcile writes the record again.
func TestEpochRecordForgottenByReloadIsWrittenAgain(t *testing.T) {
	l := startLab(t, "za", "zb")
	ctx := actuator.WithFence(context.Background(), 3)
	a, err := New(Options{Runtime: l.proc.Runtime, Zones: l.layout.Zones()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := epochRecord(t, l); got != "3" {
		t.Fatalf("record %q, want 3", got)
	}
	if err := l.proc.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := epochRecord(t, l); got != "" {
		t.Fatalf("after a reload the record is %q, want empty", got)
	}
	if _, err := a.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := epochRecord(t, l); got != "3" {
		t.Fatalf("record %q after the reconcile, want 3", got)
	}
}

// TestNoEpochMapFallsBack: with a configuration that declares no epoch
// record (older configurations), orders with an epoch still work, checked
// on grayzone's side only, and the missing map is logged once.
func TestNoEpochMapFallsBack(t *testing.T) {
	l := startLabWith(t, false, "za", "zb")
	var logs bytes.Buffer
	a, err := New(Options{Runtime: l.proc.Runtime, Zones: l.layout.Zones(), Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := actuator.WithFence(context.Background(), 4)
	if err := a.SetShifted(ctx, "za", true); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := a.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.SetShifted(ctx, "za", false); err != nil {
		t.Fatal(err)
	}
	if got := zoneStates(t, l); got["za"] != 0 {
		t.Fatalf("drained: %v", got)
	}
	if n := strings.Count(logs.String(), "no "+EpochMapFile+" map"); n != 1 {
		t.Fatalf("the missing map logged %d times, want once:\n%s", n, logs.String())
	}
}

// Orders without an epoch (a single serve) neither read nor write the record.
func TestOrdersWithoutEpochLeaveTheRecordAlone(t *testing.T) {
	l := startLab(t, "za", "zb")
	a, err := New(Options{Runtime: l.proc.Runtime, Zones: l.layout.Zones()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetShifted(context.Background(), "za", true); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := epochRecord(t, l); got != "" {
		t.Fatalf("record %q, want none", got)
	}
}

// A record no longer at the path found before (a reload with another
// configuration) is looked for again within the same order.
func TestEpochRecordMovedIsFoundAgain(t *testing.T) {
	l := startLab(t, "za", "zb")
	ctx := actuator.WithFence(context.Background(), 2)
	a, err := New(Options{Runtime: l.proc.Runtime, Zones: l.layout.Zones()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	a.fence.mapPath = "/gone/" + EpochMapFile
	if err := a.SetShifted(ctx, "za", true); err != nil {
		t.Fatal(err)
	}
	if a.fence.mapPath != l.layout.EpochMap || epochRecord(t, l) != "2" || zoneStates(t, l)["za"] != 2 {
		t.Fatalf("map %q, record %q, drained %v", a.fence.mapPath, epochRecord(t, l), zoneStates(t, l))
	}
}

// The leadership's context ending between the read and the write: nothing
// is written.
func TestExchangeWritesNothingOnceTheContextEnds(t *testing.T) {
	l := startLab(t, "za", "zb")
	a, err := New(Options{Runtime: l.proc.Runtime, Zones: l.layout.Zones()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(actuator.WithFence(context.Background(), 9))
	defer cancel()
	err = a.exchange(ctx, []string{"show servers state " + RegionalBackend}, func([]string) ([]string, error) {
		cancel() // the term ends while grayzone decides
		return setStateCommands(map[string][]Server{StateDrain: a.o.Zones["za"]}), nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("exchange: %v, want context.Canceled", err)
	}
	if got := zoneStates(t, l); got["za"] != 0 || epochRecord(t, l) != "" {
		t.Fatalf("written after the context ended: drained %v, record %q", got, epochRecord(t, l))
	}
}

func TestFindEpochMapAndKeys(t *testing.T) {
	list := "# id (file) description\n0 (/etc/haproxy/hosts.map) pattern loaded from file '/etc/haproxy/hosts.map' used by map at file 'h.cfg' line 9. curr_ver=0 next_ver=0 entry_cnt=1\n" +
		"1 (/etc/haproxy/grayzone_epoch.map) pattern loaded from file '/etc/haproxy/grayzone_epoch.map' used by map at file 'h.cfg' line 10. curr_ver=0 next_ver=0 entry_cnt=0\n"
	if got := findEpochMap(list); got != "/etc/haproxy/grayzone_epoch.map" {
		t.Fatalf("findEpochMap: %q", got)
	}
	if got := findEpochMap("# id (file) description\n"); got != "" {
		t.Fatalf("no map: %q", got)
	}
	keys, err := epochKeys("0x55 6 2026-12-07T18:00:00Z\n0x56 note x\n0x57 12 2026-12-07T18:01:00Z\n")
	if err != nil || len(keys) != 2 || keys[0] != 6 || keys[1] != 12 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	if _, err := epochKeys("Unknown map identifier. Please use #<id> or <file>.\n"); err == nil {
		t.Fatal("an error answer must be an error")
	}
}
