package store

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/grayzone/grayzone/engine/shift"
)

// A database written by a binary at schema version 1 (before shifts carried
// their ARC zonal shift id) opens with its shifts intact, gains the column,
// and then stores the id.
func TestMigrateV1KeepsShiftsAndAddsARCID(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "state")
	saved := migrations
	migrations = migrations[:1] // the old binary
	d, err := Open(ctx, dir)
	migrations = saved
	if err != nil {
		t.Fatal(err)
	}
	old := shift.Shift{ID: "gzs-old", Resource: "web", AwayFrom: "use2-az1", Status: shift.Active, Origin: shift.Manual,
		StartedAt: t0, ExpiresAt: t0.Add(shift.MaxExpiresIn), UpdatedAt: t0}
	if _, err := d.db.ExecContext(ctx, `INSERT INTO shifts (id, resource, away_from, status, origin, comment, started_by, reason,
		started_at, expires_at, updated_at, updated_by, ended_at, ended_by) VALUES (?, ?, ?, ?, ?, '', '', '', ?, ?, ?, '', NULL, '')`,
		old.ID, old.Resource, old.AwayFrom, string(old.Status), string(old.Origin), formatTime(old.StartedAt), formatTime(old.ExpiresAt), formatTime(old.UpdatedAt)); err != nil {
		t.Fatal(err)
	}
	must(t, d.Close())

	d = open(t, dir)
	if v, err := d.SchemaVersion(ctx); err != nil || v != len(migrations) {
		t.Fatalf("schema version = %d, %v", v, err)
	}
	got, err := d.LoadShifts(ctx)
	if err != nil || len(got) != 1 || got[0].ID != old.ID || got[0].ARCZonalShiftID != "" || got[0].Status != shift.Active {
		t.Fatalf("after migration: %+v, %v", got, err)
	}
	got[0].ARCZonalShiftID = "0f1e2d3c-aaaa-4bbb-8ccc-123456789abc"
	must(t, d.SaveShift(ctx, got[0]))
	must(t, d.IntegrityCheck(ctx))
	again, err := d.LoadShifts(ctx)
	if err != nil || again[0].ARCZonalShiftID != got[0].ARCZonalShiftID {
		t.Fatalf("arc id not stored: %+v, %v", again, err)
	}
}

// Both backends have the same schema versions: a migration added to one
// and not the other leaves a replica on PostgreSQL without a column.
func TestDialectsHaveTheSameVersions(t *testing.T) {
	if len(migrations) != len(postgresMigrations) {
		t.Fatalf("SQLite has %d migrations, PostgreSQL %d", len(migrations), len(postgresMigrations))
	}
}
