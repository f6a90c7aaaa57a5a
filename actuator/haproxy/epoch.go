package haproxy

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/grayzone/grayzone/actuator"
)

// The epoch record. A replica's orders carry the epoch of the leadership
// they come from (actuator.FenceFrom). HAProxy's runtime API has no
// compare-and-set, so the epoch is kept in HAProxy itself, in a map the
// configuration declares (any map whose file is named EpochMapFile), and
// every exchange that writes reads it first, over the same connection:
//
//   - the map's keys are the epochs that wrote (the value is when), and the
//     record is the highest key. A writer adds its own epoch when it is
//     higher and then deletes the lower keys, and never deletes a higher
//     one, so the record only grows: a deposed leader cannot lower it, even
//     when its write races the new leader's;
//   - a writer that finds a higher epoch than its own writes nothing,
//     counts the refusal (EpochRefusals), logs it, and from then on refuses
//     its orders of that epoch or older without connecting.
//
// What this does not give: the read and the writes are separate commands,
// and HAProxy runs each command on its own (the map under its lock, each
// server under its own); nothing holds across commands or connections. An
// old leader that read the record just before the new leader wrote it can
// still land the orders of that one exchange; they are undone by the new
// leader's next reconcile, and its next exchange is refused. An HAProxy
// reload forgets the record, as it forgets the drains, until the leader's
// next reconcile writes both again.

// EpochMapFile is the file name of the map that holds the epoch record; its
// directory is free (HAProxy's configuration names the whole path).
const EpochMapFile = "grayzone_epoch.map"

// ErrStaleEpoch is returned for an order whose epoch is older than the one
// in HAProxy's epoch record: a newer leader gives the orders now.
var ErrStaleEpoch = errors.New("haproxy: a newer leader's epoch is in HAProxy's epoch record")

// epochFence is an Actuator's view of the epoch record, guarded by its mu.
type epochFence struct {
	mapPath    string // the record's map as HAProxy names it; "" not found
	looked     bool   // the maps were listed at least once
	warned     bool   // the missing map was logged
	superseded uint64 // the highest epoch seen in the record
}

// EpochRefusals reports how many orders the epoch record refused.
func (a *Actuator) EpochRefusals() uint64 { return a.refused.Load() }

// exchange gives one order to HAProxy over one interactive connection: it
// sends reads (with the epoch record's read when ctx carries an epoch),
// passes their answers to decide, and sends the commands decide returns,
// with the record's update. Each command's answer must be empty (success).
// Without an epoch in ctx (a single serve; a Kubernetes Lease) nothing is
// checked or recorded.
func (a *Actuator) exchange(ctx context.Context, reads []string, decide func(answers []string) ([]string, error)) error {
	epoch, fenced := actuator.FenceFrom(ctx)
	fenced = fenced && epoch > 0
	f := &a.fence
	if fenced && epoch < f.superseded {
		return a.refuse(epoch, f.superseded)
	}
	s, err := a.o.Runtime.Open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	var pre []string
	// The maps are listed on the first exchange and by every reconcile
	// (a reload may have added or moved the record); a shift's exchange
	// reads only the record itself.
	list := fenced && (!f.looked || len(reads) > 0)
	if list {
		pre = append(pre, "show map")
	}
	if fenced && f.mapPath != "" {
		pre = append(pre, "show map "+f.mapPath)
	}
	answers, err := s.Do(append(pre, reads...)...)
	if err != nil {
		return err
	}
	var keys []uint64
	recorded := false
	if fenced {
		if keys, recorded, err = a.epochRecord(s, list, answers[:len(pre)]); err != nil {
			return err
		}
	}
	writes, err := decide(answers[len(pre):])
	if err != nil {
		return err
	}
	if recorded {
		high := uint64(0)
		for _, k := range keys {
			high = max(high, k)
		}
		if high > epoch {
			f.superseded = high
			return a.refuse(epoch, high)
		}
		if high < epoch {
			// First: an older writer that reads the record from now on
			// is refused before these orders are carried out.
			writes = append([]string{fmt.Sprintf("add map %s %d %s", f.mapPath, epoch, a.o.Clock.Now().UTC().Format("2006-01-02T15:04:05Z"))}, writes...)
		}
		for _, k := range keys {
			if k < epoch {
				writes = append(writes, fmt.Sprintf("del map %s %d", f.mapPath, k))
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err // the leadership ended while reading: nothing is written
	}
	got, err := s.Do(writes...)
	if err != nil {
		return err
	}
	var msgs []string
	for i, out := range got {
		if msg := strings.Join(strings.Fields(out), " "); msg != "" {
			msgs = append(msgs, writes[i]+": "+msg)
		}
	}
	if len(msgs) > 0 {
		return fmt.Errorf("haproxy: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// epochRecord returns the epoch record's keys, and false when HAProxy has
// none. pre are the answers to the exchange's first commands: the maps'
// list when listed, then the record at the path known before, if one was.
// A record that can no longer be read there (a reload with another
// configuration) is looked for again, over s.
func (a *Actuator) epochRecord(s *Session, listed bool, pre []string) ([]uint64, bool, error) {
	f := &a.fence
	known, read := f.mapPath, ""
	if listed {
		f.mapPath, f.looked = findEpochMap(pre[0]), true
		pre = pre[1:]
	}
	if known != "" {
		read = pre[0]
	}
	for again := false; ; again = true {
		a.noteEpochMap()
		if f.mapPath == "" {
			return nil, false, nil
		}
		if f.mapPath != known { // found now, or moved: read it
			got, err := s.Do("show map " + f.mapPath)
			if err != nil {
				return nil, false, err
			}
			known, read = f.mapPath, got[0]
		}
		keys, err := epochKeys(read)
		if err == nil {
			return keys, true, nil
		}
		if again {
			return nil, false, fmt.Errorf("haproxy: epoch record %s: %w", f.mapPath, err)
		}
		got, err := s.Do("show map")
		if err != nil {
			return nil, false, err
		}
		f.mapPath, f.looked, known = findEpochMap(got[0]), true, ""
	}
}

// refuse counts and logs an order refused by the epoch record.
func (a *Actuator) refuse(epoch, record uint64) error {
	n := a.refused.Add(1)
	if n == 1 || a.fence.superseded != a.loggedSuperseded {
		a.loggedSuperseded = a.fence.superseded
		a.o.Log.Warn("haproxy: order refused: HAProxy's epoch record names a newer leader; this replica gives HAProxy no more orders under its epoch "+
			"(if the store was recreated, its epochs start again at 1: clear the record with `clear map MAP` on the runtime API)",
			"runtime_api", a.o.Runtime.Addr, "epoch", epoch, "record", record, "map", a.fence.mapPath)
	}
	return fmt.Errorf("%w (order of epoch %d, record %d)", ErrStaleEpoch, epoch, record)
}

// noteEpochMap logs, once, that the configuration declares no epoch
// record, and when one appears.
func (a *Actuator) noteEpochMap() {
	f := &a.fence
	switch {
	case f.mapPath == "" && !f.warned:
		f.warned = true
		a.o.Log.Warn("haproxy: no "+EpochMapFile+" map in HAProxy's configuration: orders carry the leader's epoch only on grayzone's side (see docs/haproxy.md, \"The epoch\")",
			"runtime_api", a.o.Runtime.Addr)
	case f.mapPath != "" && f.warned:
		f.warned = false
		a.o.Log.Info("haproxy: epoch record found", "runtime_api", a.o.Runtime.Addr, "map", f.mapPath)
	}
}

// findEpochMap picks the epoch record out of `show map`'s list:
//
//	# id (file) description
//	0 (/etc/haproxy/grayzone_epoch.map) pattern loaded from file ...
func findEpochMap(list string) string {
	for _, line := range strings.Split(list, "\n") {
		_, rest, ok := strings.Cut(line, " (")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		file, _, ok := strings.Cut(rest, ") ")
		if ok && path.Base(file) == EpochMapFile {
			return file
		}
	}
	return ""
}

// EpochRecord reads the epoch record of the map at mapPath (as HAProxy
// names it): the epochs that wrote, in the map's order.
func (r Runtime) EpochRecord(ctx context.Context, mapPath string) ([]uint64, error) {
	out, err := r.Do(ctx, "show map "+mapPath)
	if err != nil {
		return nil, err
	}
	keys, err := epochKeys(out)
	if err != nil {
		return nil, fmt.Errorf("haproxy: epoch record %s: %w", mapPath, err)
	}
	return keys, nil
}

// epochKeys reads `show map FILE`: one "0xADDR KEY VALUE" line per entry.
// Keys that are not epochs (someone else's) are skipped.
func epochKeys(out string) ([]uint64, error) {
	var keys []uint64
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasPrefix(f[0], "0x") || len(f) < 2 {
			return nil, errors.New(strings.Join(strings.Fields(out), " "))
		}
		if k, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			keys = append(keys, k)
		}
	}
	return keys, nil
}
