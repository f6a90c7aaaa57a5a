package service

import (
	"reflect"
	"testing"

	"github.com/grayzone/grayzone/server/api"
)

// TestHistoryRing: the compact timeline gives back the points it was
// given, oldest first, the last historyLen of them, whatever their zones.
func TestHistoryRing(t *testing.T) {
	point := func(i int) api.HistoryPoint {
		p := api.HistoryPoint{T: int64(i) * 1000, Phase: []string{"idle", "shifted", "ramping"}[i%3]}
		n := 2
		if i%100 == 7 {
			n = 0 // no zones: nil, as before
		} else if i > historyLen/2 {
			n = 3 // a zone appears later: the ring makes room
		}
		for z := range n {
			p.Zones = append(p.Zones, api.ZonePoint{Zone: []string{"az1", "az2", "az3"}[z], Availability: float64(i%100) / 100,
				Requests: int64(i * z), P99Ms: float64(i) + 0.5, CanaryAvailability: -1, CanaryP99Ms: float64(z),
				Healthy: i%2 == 0, Isolated: z == 1, Shifted: i%5 == 0, Excluded: i%7 == z})
		}
		return p
	}
	var h history
	var want []api.HistoryPoint
	for i := range historyLen + 500 {
		p := point(i)
		h.add(p)
		want = append(want, p)
		if h.last() != p.T {
			t.Fatalf("last %d after adding %d", h.last(), p.T)
		}
	}
	want = want[len(want)-historyLen:]
	var got []api.HistoryPoint
	h.each(func(p api.HistoryPoint) bool { got = append(got, p); return true })
	if len(got) != historyLen {
		t.Fatalf("%d points, want %d", len(got), historyLen)
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("point %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
