package arc_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grayzone/grayzone/actuator/arc"
	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/internal/clock"
	"github.com/grayzone/grayzone/lab/awsstandin"
)

type mirrorEnv struct {
	clk    *clock.Fake
	s      *awsstandin.Server
	m      *arc.Mirror
	book   *shift.Manager
	events []arc.Event
	now    func() time.Time
}

func newMirror(t *testing.T) *mirrorEnv {
	s, clk := standin(t)
	book, err := shift.NewManager([]shift.Resource{{Name: "web", Zones: zones}}, shift.NewMemoryStore(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &mirrorEnv{clk: clk, s: s, book: book, now: clk.Now}
	e.m = &arc.Mirror{Client: arc.New(fastRetries(s.Config()), albARN), Resource: "web", Book: book,
		Report: func(ev arc.Event) { e.events = append(e.events, ev) }}
	return e
}

func (e *mirrorEnv) reconcile(t *testing.T) error {
	t.Helper()
	return e.m.Reconcile(context.Background(), e.now())
}

func (e *mirrorEnv) start(t *testing.T, zone string) shift.Shift {
	t.Helper()
	sh, err := e.book.Start(e.now(), shift.StartRequest{Resource: "web", AwayFrom: zone, ExpiresIn: time.Hour, Comment: "by hand", StartedBy: "op"})
	if err != nil {
		t.Fatal(err)
	}
	return sh
}

func (e *mirrorEnv) kinds() string {
	var k []string
	for _, ev := range e.events {
		k = append(k, ev.Kind)
	}
	return strings.Join(k, ",")
}

func TestMirrorAppliesCancelsAndLinks(t *testing.T) {
	e := newMirror(t)
	sh := e.start(t, "use2-az1")
	if err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	got, _ := e.book.Get(sh.ID)
	arcs := e.s.Shifts(albARN)
	if len(arcs) != 1 || got.ARCZonalShiftID != arcs[0].ID || arcs[0].AwayFrom != "use2-az1" || arc.Owner(arcs[0].Comment) != sh.ID ||
		!arcs[0].Expiry.Equal(sh.ExpiresAt) {
		t.Fatalf("grayzone %+v, ARC %+v", got, arcs)
	}
	// Applying again changes nothing.
	if err := e.reconcile(t); err != nil || len(e.s.Shifts(albARN)) != 1 {
		t.Fatalf("second reconcile: %v, %d shifts", err, len(e.s.Shifts(albARN)))
	}
	// Extending it in grayzone extends it in ARC.
	two := 2 * time.Hour
	if _, err := e.book.Update(e.now(), sh.ID, shift.UpdateRequest{ExpiresIn: &two}); err != nil {
		t.Fatal(err)
	}
	if err := e.reconcile(t); err != nil || !e.s.Shifts(albARN)[0].Expiry.Equal(e.now().Add(two)) {
		t.Fatalf("update: %v, %+v", err, e.s.Shifts(albARN))
	}
	if _, err := e.book.Cancel(e.now(), sh.ID, "op"); err != nil {
		t.Fatal(err)
	}
	if err := e.reconcile(t); err != nil || e.s.Shifts(albARN)[0].Status != "CANCELED" {
		t.Fatalf("cancel: %v, %+v", err, e.s.Shifts(albARN))
	}
}

// A crash between StartZonalShift and the write of its id: the next
// reconcile finds grayzone's mark in ARC and adopts the shift, not a second one.
func TestMirrorAdoptsItsShiftAfterACrash(t *testing.T) {
	e := newMirror(t)
	sh := e.start(t, "use2-az2")
	if _, err := arc.New(e.s.Config(), albARN).Start(context.Background(), "use2-az2", time.Hour, arc.Comment(sh.ID, sh.Comment)); err != nil {
		t.Fatal(err)
	}
	if err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	got, _ := e.book.Get(sh.ID)
	if arcs := e.s.Shifts(albARN); len(arcs) != 1 || got.ARCZonalShiftID != arcs[0].ID {
		t.Fatalf("grayzone %+v, ARC %+v", got, arcs)
	}
}

// A shift someone else started is recorded as external: it blocks a second
// shift like any other, and grayzone refuses to change or end it.
func TestMirrorRespectsForeignShifts(t *testing.T) {
	e := newMirror(t)
	id := e.s.StartOutside(albARN, "use2-az3", awsstandin.ZonalAutoshiftType, "ARC zonal autoshift", 3*time.Hour)
	if err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	act, ok := e.book.Active("web")
	if !ok || act.Origin != shift.External || act.AwayFrom != "use2-az3" || act.ARCZonalShiftID != id || act.StartedBy != "arc:ZONAL_AUTOSHIFT" {
		t.Fatalf("active = %+v, %v", act, ok)
	}
	if _, err := e.book.Start(e.now(), shift.StartRequest{Resource: "web", AwayFrom: "use2-az1", ExpiresIn: time.Hour}); !errors.Is(err, shift.ErrConflict) {
		t.Fatalf("second shift over a foreign one: %v", err)
	}
	if _, err := e.book.Cancel(e.now(), act.ID, "op"); !errors.Is(err, shift.ErrConflict) || !strings.Contains(err.Error(), "outside grayzone") {
		t.Fatalf("cancel of a foreign shift: %v", err)
	}
	if err := e.reconcile(t); err != nil || e.s.Shifts(albARN)[0].Status != "ACTIVE" {
		t.Fatalf("the foreign shift was touched: %v %+v", err, e.s.Shifts(albARN))
	}
	// When its owner ends it, grayzone sees it end.
	e.s.CancelOutside(id)
	if err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.book.Get(act.ID); got.Status != shift.Canceled {
		t.Fatalf("after cancel in ARC: %+v", got)
	}
	if e.kinds() != "shift_observed,shift_ended" {
		t.Fatalf("events %s", e.kinds())
	}
}

// A grayzone shift that ARC cancelled or expired is marked so, with the reason.
func TestMirrorMarksShiftsARCEnded(t *testing.T) {
	e := newMirror(t)
	sh := e.start(t, "use2-az1")
	if err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	got, _ := e.book.Get(sh.ID)
	e.s.CancelOutside(got.ARCZonalShiftID)
	if err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	got, _ = e.book.Get(sh.ID)
	if got.Status != shift.Canceled || got.EndedBy != "arc: cancelled in ARC, outside grayzone" {
		t.Fatalf("after ARC cancel: %+v", got)
	}
	if len(e.s.Shifts(albARN)) != 1 {
		t.Fatal("grayzone restarted a shift ARC had cancelled")
	}
}

// A refusal that retrying cannot fix ends the grayzone shift with ARC's
// reason in one line; the next reconcile does not try again.
func TestMirrorPermanentRefusalIsOneLine(t *testing.T) {
	e := newMirror(t)
	sh := e.start(t, "use2-az1")
	e.s.Deny(awsstandin.ARC, "StartZonalShift")
	err := e.reconcile(t)
	if !arc.Permanent(err) {
		t.Fatalf("err = %v", err)
	}
	got, _ := e.book.Get(sh.ID)
	if got.Status != shift.Canceled || !strings.Contains(got.EndedBy, "AccessDeniedException") || strings.Contains(got.EndedBy, "\n") {
		t.Fatalf("shift = %+v", got)
	}
	before := len(e.s.Calls())
	if err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	for _, c := range e.s.Calls()[before:] {
		if c.Action == "StartZonalShift" {
			t.Fatal("a refused shift was retried")
		}
	}
	if e.kinds() != "shift_refused" {
		t.Fatalf("events %s", e.kinds())
	}
}

// While ARC cannot be reached the shift stays pending (reported once); it is
// applied when ARC answers again.
func TestMirrorRetriesWhenARCIsBack(t *testing.T) {
	e := newMirror(t)
	sh := e.start(t, "use2-az1")
	var down atomic.Bool
	down.Store(true)
	e.s.SetDown(awsstandin.ARC, down.Load)
	for range 3 {
		if err := e.reconcile(t); err == nil || arc.Permanent(err) {
			t.Fatalf("while down: %v", err)
		}
	}
	if got, _ := e.book.Get(sh.ID); got.Status != shift.Active || got.ARCZonalShiftID != "" {
		t.Fatalf("while down: %+v", got)
	}
	down.Store(false)
	if err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.book.Get(sh.ID); got.ARCZonalShiftID == "" {
		t.Fatalf("not applied once ARC is back: %+v", got)
	}
	if e.kinds() != "arc_unreachable,shift_applied,arc_reachable" {
		t.Fatalf("events %s", e.kinds())
	}
}

// Expiry is ARC's: when ARC says the shift expired, grayzone marks it
// EXPIRED at ARC's expiry time, with the reason.
func TestMirrorTakesARCsExpiry(t *testing.T) {
	e := newMirror(t)
	sh := e.start(t, "use2-az2")
	if err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Hour)
	if err := e.reconcile(t); err != nil {
		t.Fatal(err)
	}
	got, _ := e.book.Get(sh.ID)
	if got.Status != shift.Expired || got.EndedAt == nil || !got.EndedAt.Equal(sh.ExpiresAt) || !strings.HasPrefix(got.EndedBy, "arc: expired in ARC at ") {
		t.Fatalf("after ARC's expiry: %+v", got)
	}
	if e.kinds() != "shift_applied,shift_ended" {
		t.Fatalf("events %s", e.kinds())
	}
}
