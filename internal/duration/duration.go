// Package duration formats time.Duration values the way people write them.
package duration

import (
	"strings"
	"time"
)

// Format prints d as time.Duration.String does, less the trailing zero
// units people leave out: 6m rather than 6m0s, 80h rather than 80h0m0s.
func Format(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
