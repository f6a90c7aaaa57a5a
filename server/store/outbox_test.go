package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/grayzone/grayzone/notify/event"
)

func TestOutbox(t *testing.T) { eachBackend(t, testOutbox) }

// An event is queued per endpoint with its audit entry, in order; marks
// take it out; a failed transaction leaves neither; a follower's fenced
// write leaves neither.
func testOutbox(t *testing.T, reopen func(t *testing.T) *DB) {
	ctx := context.Background()
	d := reopen(t)
	ob := d.Outbox()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var ids []string
	for i, k := range []event.Kind{event.ShiftStarted, event.ShiftEnded} {
		ev := &event.Event{ID: event.NewID(), Version: event.Version, Kind: k, At: t0.Add(time.Duration(i) * time.Second), Resource: "api", Zone: "a"}
		e, err := d.AppendEvents(ctx, AuditEntry{At: ev.At, Kind: string(k), Resource: "api", Zone: "a", Message: "m"}, []Queued{{ev, []string{"am", "hook"}}})
		must(t, err)
		if ev.AuditSeq != e.Seq || e.Seq == 0 {
			t.Fatalf("event's audit seq %d, entry's %d", ev.AuditSeq, e.Seq)
		}
		ids = append(ids, ev.ID)
	}
	// An invalid audit entry: the transaction writes nothing.
	bad := &event.Event{ID: event.NewID(), Kind: event.Detection}
	if _, err := d.AppendEvents(ctx, AuditEntry{Kind: "x", Detail: []byte("{")}, []Queued{{bad, []string{"am"}}}); err == nil {
		t.Fatal("bad detail accepted")
	}
	d = reopen(t) // durable
	ob = d.Outbox()
	for _, ep := range []string{"am", "hook"} {
		items, err := ob.Pending(ctx, ep, 10)
		must(t, err)
		if len(items) != 2 || items[0].Event.ID != ids[0] || items[1].Event.ID != ids[1] || items[0].Seq >= items[1].Seq {
			t.Fatalf("%s pending: %+v", ep, items)
		}
		if items[0].Event.Kind != event.ShiftStarted || !items[0].Event.At.Equal(t0) {
			t.Fatalf("event read back as %+v", items[0].Event)
		}
	}
	items, _ := ob.Pending(ctx, "am", 10)
	must(t, ob.Retry(ctx, items[0].Seq, 1, t0.Add(time.Minute), "down"))
	items, _ = ob.Pending(ctx, "am", 10)
	if items[0].Attempts != 1 || !items[0].NextAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after retry: %+v", items[0])
	}
	must(t, ob.Delivered(ctx, items[0].Seq, t0))
	must(t, ob.GiveUp(ctx, items[1].Seq, t0, "refused"))
	if items, _ := ob.Pending(ctx, "am", 10); len(items) != 0 {
		t.Fatalf("still pending: %+v", items)
	}
	st, err := d.OutboxStats(ctx)
	must(t, err)
	if len(st) != 2 || st[0].Endpoint != "am" || st[0].Pending != 0 || st[0].Delivered != 1 || st[0].Failed != 1 ||
		st[1].Pending != 2 || st[1].OldestPending == nil {
		t.Fatalf("stats: %+v", st)
	}
	// A follower (fenced out) queues nothing and writes no audit entry.
	d.SetFence(NoEpoch)
	if _, err := d.AppendEvents(ctx, AuditEntry{Kind: "x", Message: "m"}, []Queued{{&event.Event{ID: event.NewID()}, []string{"am"}}}); !errors.Is(err, ErrFenced) {
		t.Fatalf("fenced append: %v", err)
	}
	d.SetFence(0)
	if items, _ := ob.Pending(ctx, "am", 10); len(items) != 0 {
		t.Fatalf("fenced write queued: %+v", items)
	}
	must(t, d.PruneOutbox(ctx, t0.Add(time.Hour)))
	st, _ = d.OutboxStats(ctx)
	if len(st) != 1 || st[0].Endpoint != "hook" {
		t.Fatalf("after prune: %+v", st)
	}
}
