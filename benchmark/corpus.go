package benchmark

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/grayzone/grayzone/lab/scenario"
)

// The day corpus: 24-hour sim scenarios, each generated from its seed by
// DayScenario, so day N is the same file on every machine. The first few
// are kept in benchmark/corpus/day/ (a test checks they match the
// generator), so they can be read, diffed and run with `grayzone lab`.
//
// A day is three zones of uneven capacity under a diurnal load (a few
// req/s at night, a few hundred at the peak) and, in its own 90-minute slot
// each, the nuisance a region sees on an ordinary day, none of which should
// move traffic: one bad instance of every kind of fault; region-wide
// latency, errors and packet loss with sharp onsets near the peak; a
// telemetry loss in one zone and one across the region; a control-plane
// outage. Every even seed adds one real zonal gray failure ("gray": 5 to
// 20 % packet loss on the zone's database link, or +100 to +300 ms on it or
// on its instances, 10 to 30 minutes, at any hour, night included), which
// should be shifted away from once and given back after it ends.

// DayZones are the corpus's zones.
var DayZones = []string{"az-a", "az-b", "az-c"}

// dayEvent is one fault of a day before it is written out.
type dayEvent struct {
	kind     scenario.Kind
	target   string // "zone: X", "instance: X", "region: true"
	percent  float64
	latency  time.Duration
	dur      time.Duration
	regional bool // wants a slot near the peak
	name     string
	at       time.Duration
}

// DayYAML writes the scenario of one corpus day. duration shortens the day
// for tests (the slots shrink with it); 0 means 24h.
func DayYAML(seed int64, duration time.Duration) string {
	if duration <= 0 {
		duration = 24 * time.Hour
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6772617964617973)) // "graydays"
	scale := float64(duration) / float64(24*time.Hour)
	dur := func(lo, hi time.Duration) time.Duration { // a duration in [lo, hi], whole seconds, scaled
		d := lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
		return max(time.Duration(float64(d)*scale).Truncate(time.Second), time.Second)
	}
	ms := func(lo, hi int) time.Duration { return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Millisecond }
	pct := func(lo, hi int) float64 { return float64(lo + rng.IntN(hi-lo+1)) }

	counts := []int{2, 3, 4}
	rng.Shuffle(len(counts), func(i, j int) { counts[i], counts[j] = counts[j], counts[i] })
	peak := 150 + rng.IntN(151) // req/s at the peak
	low := 2 + rng.IntN(7)      // req/s at the quietest hour
	peakAt := time.Duration(12+rng.IntN(7)) * time.Hour
	inst := func() string {
		z := rng.IntN(len(DayZones))
		return scenario.InstanceID(DayZones[z], 1+rng.IntN(counts[z]))
	}
	zone := func() string { return DayZones[rng.IntN(len(DayZones))] }

	evs := []dayEvent{
		{kind: scenario.Latency, target: "instance: " + inst(), latency: ms(100, 300), dur: dur(10*time.Minute, 30*time.Minute)},
		{kind: scenario.PacketLoss, target: "instance: " + inst(), percent: pct(10, 40), dur: dur(10*time.Minute, 30*time.Minute)},
		{kind: scenario.Blackhole, target: "instance: " + inst(), dur: dur(5*time.Minute, 15*time.Minute)},
		{kind: scenario.Reset, target: "instance: " + inst(), percent: pct(10, 40), dur: dur(10*time.Minute, 30*time.Minute)},
		{kind: scenario.HTTPError, target: "instance: " + inst(), percent: pct(5, 30), dur: dur(10*time.Minute, 30*time.Minute)},
		{kind: scenario.Slow, target: "instance: " + inst(), latency: ms(100, 400), dur: dur(10*time.Minute, 30*time.Minute)},
		{kind: scenario.Latency, target: "region: true", latency: ms(100, 300), dur: dur(5*time.Minute, 15*time.Minute), regional: true},
		{kind: scenario.HTTPError, target: "region: true", percent: pct(5, 10), dur: dur(5*time.Minute, 15*time.Minute), regional: true},
		{kind: scenario.PacketLoss, target: "region: true", percent: pct(5, 15), dur: dur(5*time.Minute, 15*time.Minute), regional: true},
		{kind: scenario.TelemetryLoss, target: "zone: " + zone(), dur: dur(5*time.Minute, 20*time.Minute)},
		{kind: scenario.TelemetryLoss, target: "region: true", dur: dur(2*time.Minute, 10*time.Minute)},
		{kind: scenario.ControlPlaneOutage, target: "region: true", dur: dur(20*time.Minute, 60*time.Minute)},
	}
	gray := seed%2 == 0
	var grayZone string
	if gray {
		grayZone = zone()
		g := dayEvent{target: "zone: " + grayZone, dur: dur(10*time.Minute, 30*time.Minute), name: "gray"}
		switch rng.IntN(3) {
		case 0:
			g.kind, g.percent = scenario.PacketLoss, pct(5, 20)
		case 1:
			g.kind, g.latency = scenario.Latency, ms(100, 300)
		default:
			g.kind, g.latency = scenario.Slow, ms(100, 300)
		}
		evs = append(evs, g)
	}

	// Sixteen 90-minute slots: the regional events take the three nearest the
	// peak (sharp onsets at high traffic); every other event a random free
	// slot. Each starts at a random point of its slot that leaves at least
	// a quarter of the slot after its end, so events never overlap.
	const slots = 16
	slotLen := duration / slots
	byPeak := make([]int, slots)
	for i := range byPeak {
		byPeak[i] = i
	}
	dist := func(i int) time.Duration {
		mid := time.Duration(i)*slotLen + slotLen/2
		d := (mid - time.Duration(float64(peakAt)*scale)).Abs()
		return min(d, duration-d)
	}
	slices.SortStableFunc(byPeak, func(a, b int) int { return int(dist(a) - dist(b)) })
	free := slices.Clone(byPeak[3:])
	rng.Shuffle(len(free), func(i, j int) { free[i], free[j] = free[j], free[i] })
	nearPeak := slices.Clone(byPeak[:3])
	for i := range evs {
		var s int
		if evs[i].regional {
			s, nearPeak = nearPeak[0], nearPeak[1:]
		} else {
			s, free = free[0], free[1:]
		}
		room := slotLen - slotLen/4 - evs[i].dur
		evs[i].at = time.Duration(s)*slotLen + time.Duration(rng.Int64N(int64(max(room, time.Second)))).Truncate(time.Second)
	}
	slices.SortStableFunc(evs, func(a, b dayEvent) int { return int(a.at - b.at) })

	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by benchmark.DayYAML(%d, %s); `grayzone bench detect --corpus day` runs it.\n", seed, fmtDuration(duration))
	fmt.Fprintf(&b, "version: 1\nname: day-%03d\n", seed)
	if gray {
		fmt.Fprintf(&b, "description: A production day with nuisance faults and one zonal gray failure in %s.\n", grayZone)
	} else {
		fmt.Fprintf(&b, "description: A production day with nuisance faults only; nothing should be shifted.\n")
	}
	fmt.Fprintf(&b, "seed: %d\nduration: %s\n", seed, fmtDuration(duration))
	fmt.Fprintf(&b, "topology:\n  zones: [%s]\n  instances_per_zone: {", strings.Join(DayZones, ", "))
	for i, z := range DayZones {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", z, counts[i])
	}
	fmt.Fprintf(&b, "}\nload:\n  rps: %d\n  diurnal: {min: %d, peak_at: %s}\n", peak, low, fmtDuration(peakAt))
	b.WriteString("canary:\n  interval: 10s\nfaults:\n")
	for _, e := range evs {
		fmt.Fprintf(&b, "  - {at: %s, duration: %s, kind: %s, %s", fmtDuration(e.at), fmtDuration(e.dur), e.kind, e.target)
		if e.percent > 0 {
			fmt.Fprintf(&b, ", percent: %g", e.percent)
		}
		if e.latency > 0 {
			fmt.Fprintf(&b, ", latency: %s", e.latency)
		}
		if e.name != "" {
			fmt.Fprintf(&b, ", name: %s", e.name)
		}
		b.WriteString("}\n")
	}
	b.WriteString("expect:\n")
	if gray {
		fmt.Fprintf(&b, "  shift: {away_from: %s, within: 5m, from: gray, one_episode: true}\n  recovered_within: 10m\n", grayZone)
	} else {
		b.WriteString("  shift: none\n")
	}
	return b.String()
}

// DayScenario parses DayYAML(seed, duration): the corpus goes through the
// same strict parser as any scenario file.
func DayScenario(seed int64, duration time.Duration) (*scenario.Scenario, error) {
	return scenario.Parse(fmt.Sprintf("corpus:day-%03d.yaml", seed), []byte(DayYAML(seed, duration)))
}

// fmtDuration writes a duration the way a person would in a scenario
// (14h, 1h30m, 95s), which the parser reads back exactly.
func fmtDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return strings.TrimSuffix(d.String(), "0s")
	}
	return d.String()
}
