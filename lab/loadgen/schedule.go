package loadgen

import (
	"math"
	"time"
)

// idleStep is how often a paused schedule (rate <= 0) looks at the rate again.
const idleStep = 10 * time.Millisecond

// maxRate caps absurd rates so that the gap between requests stays >= 1µs.
const maxRate = 1e6

// schedule turns a rate function into request offsets from the start. It is
// a pure function of the rate, so the i-th request's due time never depends
// on how late earlier ones were sent.
//
// The rate is read at each request's due time and holds until the next one.
// Within a run of equal rates ("segment") offsets are computed from the
// segment's start, not by adding gaps, so rounding never accumulates.
type schedule struct {
	rate func(time.Duration) float64
	end  time.Duration

	at       time.Duration // offset of the next request (or rate probe)
	segStart time.Duration
	segRate  float64 // 0: no segment
	segN     int64   // requests issued in this segment
}

func newSchedule(rate func(time.Duration) float64, end time.Duration) *schedule {
	return &schedule{rate: rate, end: end}
}

// next returns the next request's offset, or false once the offset would be
// at or past the end.
func (s *schedule) next() (time.Duration, bool) {
	for {
		if s.at >= s.end {
			return 0, false
		}
		r := s.rate(s.at)
		if math.IsNaN(r) || r <= 0 {
			s.segRate = 0
			s.at += idleStep
			continue
		}
		r = min(r, maxRate)
		if r != s.segRate {
			s.segStart, s.segRate, s.segN = s.at, r, 0
		}
		due := s.at
		s.segN++
		next := float64(s.segStart) + math.Round(float64(s.segN)*float64(time.Second)/s.segRate)
		if next >= float64(s.end) {
			s.at = s.end
		} else {
			s.at = time.Duration(next)
		}
		return due, true
	}
}
