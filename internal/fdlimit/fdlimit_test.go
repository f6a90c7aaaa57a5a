package fdlimit

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestRaiseReachesTheHardLimit(t *testing.T) {
	var before unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &before); err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { _ = unix.Setrlimit(unix.RLIMIT_NOFILE, &before) })
	// Start below the hard limit, as a default soft limit of 1024 is.
	low := unix.Rlimit{Cur: min(before.Max, 256), Max: before.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Skip(err)
	}
	l, err := Raise()
	if err != nil {
		t.Fatal(err)
	}
	if l.Was != low.Cur || l.Soft != before.Max || l.Hard != before.Max || l.Raised != (low.Cur < before.Max) {
		t.Errorf("%+v (hard %d)", l, before.Max)
	}
	var now unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &now); err != nil || now.Cur != before.Max {
		t.Errorf("soft limit now %d, want %d (%v)", now.Cur, before.Max, err)
	}
	again, err := Raise()
	if err != nil || again.Raised || again.Soft != before.Max {
		t.Errorf("second Raise: %+v %v", again, err)
	}
}

func TestResources(t *testing.T) {
	for _, tc := range []struct{ soft, base, per, want uint64 }{
		{1024, 64, 16, 60},
		{1048576, 64, 16, 65532},
		{64, 64, 16, 0},
		{1024, 64, 0, 0},
	} {
		if got := Resources(tc.soft, tc.base, tc.per); got != tc.want {
			t.Errorf("Resources(%d, %d, %d) = %d, want %d", tc.soft, tc.base, tc.per, got, tc.want)
		}
	}
}
