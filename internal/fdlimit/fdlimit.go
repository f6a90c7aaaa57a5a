// Package fdlimit checks and raises the process's open-file limit
// (RLIMIT_NOFILE): serve holds descriptors for every resource's listeners,
// canary and target connections, and customer connections, and running out
// makes every listener fail accept with "too many open files".
package fdlimit

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Limit is the open-file limit before and after Raise.
type Limit struct {
	Was    uint64 // soft limit found
	Soft   uint64 // soft limit now
	Hard   uint64
	Raised bool
}

// Raise lifts the soft limit to the hard limit when it is lower, which
// needs no privilege. A failure to raise leaves the limit as it was and is
// returned with what was found.
func Raise() (Limit, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return Limit{}, fmt.Errorf("read the open-file limit: %w", err)
	}
	l := Limit{Was: rl.Cur, Soft: rl.Cur, Hard: rl.Max}
	if rl.Cur >= rl.Max {
		return l, nil
	}
	want := unix.Rlimit{Cur: rl.Max, Max: rl.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err != nil {
		return l, fmt.Errorf("raise the open-file limit from %d to %d: %w", rl.Cur, rl.Max, err)
	}
	l.Soft, l.Raised = rl.Max, true
	return l, nil
}

// Resources is how many resources a limit of soft descriptors allows at
// perResource each, after base for the process itself (API, store, logs).
func Resources(soft, base, perResource uint64) uint64 {
	if soft <= base || perResource == 0 {
		return 0
	}
	return (soft - base) / perResource
}
