package scenario

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// publicDir holds the scenarios published with the contract; they must parse
// unchanged.
var publicDir = filepath.Join("..", "..", "..", "shared", "scenarios")

func publicFiles(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join(publicDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestPublicScenariosParse(t *testing.T) {
	if _, err := os.Stat(publicDir); err != nil {
		t.Skipf("public scenarios not available: %v", err)
	}
	files := publicFiles(t)
	if len(files) == 0 {
		t.Fatalf("no scenarios in %s", publicDir)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := Open(f)
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimSuffix(filepath.Base(f), ".yaml"); s.Name != want {
				t.Errorf("name %q, want the file's name %q", s.Name, want)
			}
			if s.File != f {
				t.Errorf("File %q, want %q", s.File, f)
			}
		})
	}
}

func TestBuiltinScenariosParse(t *testing.T) {
	names := BuiltinNames()
	if !reflect.DeepEqual(names, []string{"control-plane-outage", "regional-db-latency", "single-instance-errors", "smoke", "workshop-db-packet-loss", "zone-latency-only"}) {
		t.Errorf("BuiltinNames() = %v", names)
	}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			s, err := Builtin(n)
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != n {
				t.Errorf("name %q, want %q", s.Name, n)
			}
			if want := "builtin:" + n + ".yaml"; s.File != want {
				t.Errorf("File %q, want %q", s.File, want)
			}
			// The embedded copy must not drift from the published one.
			if pub, err := os.ReadFile(filepath.Join(publicDir, n+".yaml")); err == nil {
				emb, _ := builtinFS.ReadFile("builtin/" + n + ".yaml")
				if string(pub) != string(emb) {
					t.Errorf("builtin/%s.yaml differs from %s", n, publicDir)
				}
			}
		})
	}
	if _, err := Builtin(DefaultName); err != nil {
		t.Errorf("default scenario: %v", err)
	}
	if _, err := Builtin("nope"); err == nil || !strings.Contains(err.Error(), "builtin scenarios: control-plane-outage, ") {
		t.Errorf("Builtin(nope) = %v", err)
	}
}

func TestWorkshopFields(t *testing.T) {
	s, err := Builtin("workshop-db-packet-loss.yaml")
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("Version", s.Version, 1)
	check("Seed", s.Seed, int64(7))
	check("Duration", s.Duration, 6*time.Minute)
	check("Zones", s.Topology.Zones, []string{"use2-az1", "use2-az2", "use2-az3"})
	check("Instances", s.Topology.Instances, map[string]int{"use2-az1": 2, "use2-az2": 2, "use2-az3": 2})
	check("DatabaseZone", s.Topology.DatabaseZone, "use2-az2")
	check("InstanceIDs", s.Topology.InstanceIDs("use2-az1"), []string{"use2-az1-1", "use2-az1-2"})
	check("RPS", s.Load.RPS, 20.0)
	check("Mix", s.Load.Mix, []OperationShare{{"ride", 0.4}, {"pay", 0.2}, {"signin", 0.2}, {"home", 0.2}})
	check("Steps", len(s.Load.Steps), 0)
	check("Canary", s.Canary.Interval, 5*time.Second)
	check("Policy", s.Policy, Policy{ControlPlaneAfter: 30 * time.Second, RecoveryHold: 60 * time.Second})
	if len(s.Faults) != 1 {
		t.Fatalf("faults: %+v", s.Faults)
	}
	f := s.Faults[0]
	check("fault", f, Fault{At: 60 * time.Second, Duration: 3 * time.Minute, Kind: PacketLoss, Target: Target{Zone: "use2-az1"}, Percent: 30, Line: 20})
	check("fault end", f.End(s.Duration), 4*time.Minute)
	check("shift", *s.Expect.Shift, ExpectShift{AwayFrom: "use2-az1", Within: 60 * time.Second})
	if s.Expect.ControlPlane == nil || !*s.Expect.ControlPlane {
		t.Errorf("expect.control_plane = %v, want true", s.Expect.ControlPlane)
	}
	check("recovered_within", s.Expect.RecoveredWithin, 3*time.Minute)
	if s.Expect.MaxFailedRatio != nil {
		t.Errorf("max_failed_ratio = %v, want unset", *s.Expect.MaxFailedRatio)
	}
}

func TestOtherPublicFields(t *testing.T) {
	s, err := Builtin("control-plane-outage")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Faults[0]; got.Kind != ControlPlaneOutage || !got.Target.Region || got.Line != 20 {
		t.Errorf("control-plane-outage fault[0] = %+v", got)
	}
	if s, err = Builtin("single-instance-errors"); err != nil {
		t.Fatal(err)
	}
	if got := s.Faults[0]; got.Target.Instance != "use2-az3-1" || got.Percent != 100 || !got.Hits("use2-az3", "use2-az3-1") {
		t.Errorf("single-instance-errors fault[0] = %+v", got)
	}
	if !s.Expect.Shift.None {
		t.Errorf("shift = %+v, want none", s.Expect.Shift)
	}
	if s, err = Builtin("zone-latency-only"); err != nil {
		t.Fatal(err)
	}
	if got := s.Faults[0]; got.Latency != 300*time.Millisecond || got.Jitter != 20*time.Millisecond {
		t.Errorf("zone-latency-only fault[0] = %+v", got)
	}
	// Defaults from the contract.
	if s.Seed != 3 || s.Canary.Interval != 10*time.Second || s.Policy.ControlPlaneAfter != 30*time.Second || s.Policy.RecoveryHold != 45*time.Second {
		t.Errorf("zone-latency-only defaults: %+v", s)
	}
}

func TestDefaultsAndOptionalForms(t *testing.T) {
	src := `version: 1
name: x
duration: 10m
topology:
  zones: [a, b, c]
  instances_per_zone: {c: 3, a: 1, b: 2}
load:
  rps: 5.5
  operations: {home: 0.5, pay: 0, ride: 0.5}
  steps:
    - {at: 0s, rps: 1}
    - {at: 2m, rps: 80}
faults:
  - {at: 0, kind: slow, instance: c-3, latency: 1s}
  - {at: 1m, kind: reset, region: true, percent: 0.5}
expect:
  shift: none
  max_failed_ratio: 0
  control_plane: false
`
	s, err := Parse("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if s.Seed != 1 || s.Canary.Interval != 10*time.Second || s.Policy.ControlPlaneAfter != 30*time.Second || s.Policy.RecoveryHold != 60*time.Second || s.Policy.Ramp != nil {
		t.Errorf("defaults: seed %d canary %v policy %+v", s.Seed, s.Canary.Interval, s.Policy)
	}
	if s.Topology.DatabaseZone != "b" {
		t.Errorf("database zone %q, want the second zone", s.Topology.DatabaseZone)
	}
	if !reflect.DeepEqual(s.Topology.Instances, map[string]int{"a": 1, "b": 2, "c": 3}) {
		t.Errorf("instances %v", s.Topology.Instances)
	}
	// Catalogue order, zero shares dropped.
	if !reflect.DeepEqual(s.Load.Mix, []OperationShare{{"ride", 0.5}, {"home", 0.5}}) {
		t.Errorf("mix %v", s.Load.Mix)
	}
	if !reflect.DeepEqual(s.Load.Steps, []Step{{0, 1}, {2 * time.Minute, 80}}) || s.Load.RPSAt(3*time.Minute) != 80 {
		t.Errorf("steps %v", s.Load.Steps)
	}
	if f := s.Faults[0]; f.At != 0 || f.Target.Instance != "c-3" || f.Duration != 0 || f.End(s.Duration) != s.Duration || f.Line != 14 {
		t.Errorf("fault[0] %+v", f)
	}
	if f := s.Faults[1]; !f.Target.Region || f.Percent != 0.5 || f.Line != 15 {
		t.Errorf("fault[1] %+v", f)
	}
	if !s.Expect.Shift.None || s.Expect.MaxFailedRatio == nil || *s.Expect.MaxFailedRatio != 0 || s.Expect.ControlPlane == nil || *s.Expect.ControlPlane {
		t.Errorf("expect %+v", s.Expect)
	}
}

func TestAliases(t *testing.T) {
	src := `version: 1
name: x
duration: &d 2m
topology:
  zones: [a, &z b]
  instances_per_zone: 1
load: {rps: 1}
faults: [{at: 1m, duration: *d, kind: blackhole, zone: *z}]
expect: {shift: {away_from: *z}}
`
	s, err := Parse("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if s.Faults[0].Target.Zone != "b" || s.Faults[0].Duration != 2*time.Minute || s.Expect.Shift.AwayFrom != "b" {
		t.Errorf("aliases not followed: %+v %+v", s.Faults[0], s.Expect.Shift)
	}
}

// base is a valid scenario; the error cases below change one thing in it.
// Its line numbers are referred to by the expected errors.
const base = `version: 1
name: t
duration: 5m
topology:
  zones: [a, b, c]
  instances_per_zone: 2
load:
  rps: 10
faults:
  - at: 30s
    duration: 1m
    kind: packet_loss
    zone: a
    percent: 30
expect:
  shift: {away_from: a, within: 60s}
  control_plane: true
  recovered_within: 2m
  max_failed_ratio: 0.1
`

func TestBaseIsValid(t *testing.T) {
	if _, err := Parse("t.yaml", []byte(base)); err != nil {
		t.Fatal(err)
	}
}

func TestParseErrors(t *testing.T) {
	// edit replaces old (which must occur exactly once) in base.
	edit := func(old, new string) string {
		if strings.Count(base, old) != 1 {
			panic("test case: " + old + " must occur once in base")
		}
		return strings.Replace(base, old, new, 1)
	}
	cases := []struct {
		name, src, want string
	}{
		// File level.
		{"empty file", "", "t.yaml:1: empty file (expected a scenario: version, name, duration, topology, load, ...)"},
		{"only comments", "# nothing\n\n", "t.yaml:1: empty file (expected a scenario: version, name, duration, topology, load, ...)"},
		{"only document marker", "---\n", "t.yaml:1: empty file (expected a scenario: version, name, duration, topology, load, ...)"},
		{"top is a list", "# a list\n- a\n- b\n", "t.yaml:2: the top level must be a mapping of scenario keys (version, name, duration, ...), got a list"},
		{"top is a scalar", "hello\n", `t.yaml:1: the top level must be a mapping of scenario keys (version, name, duration, ...), got string "hello"`},
		{"tab indentation", edit("  instances_per_zone: 2", "\tinstances_per_zone: 2"), "t.yaml:6: invalid YAML: found character that cannot start any token"},
		{"unclosed flow list", edit("zones: [a, b, c]", "zones: [a, b, c"), "t.yaml:5: invalid YAML: did not find expected ',' or ']'"},
		{"bad indentation", edit("  rps: 10", "  rps: 10\n rate: 3"), "t.yaml:9: invalid YAML: did not find expected key"},
		{"unknown anchor", edit("zone: a", "zone: *nowhere"), "t.yaml:13: invalid YAML: unknown anchor 'nowhere' referenced"},
		{"control character", edit("name: t", "name: t\x01"), "t.yaml:2: invalid YAML: control characters are not allowed"},
		{"two documents", base + "---\nversion: 1\n", "t.yaml:20: only one YAML document is allowed in a scenario file"},

		// Keys.
		{"unknown key at top", base + "colour: red\n", "t.yaml:20: colour: unknown key (expected one of version, name, description, seed, duration, topology, load, canary, policy, faults, expect)"},
		{"unknown key nested", edit("instances_per_zone: 2", "instance_per_zone: 2"), "t.yaml:6: topology.instance_per_zone: unknown key (expected one of zones, instances_per_zone, database_zone)"},
		{"unknown key in fault", edit("    percent: 30", "    percent: 30\n    precent: 30"), "t.yaml:15: faults[0].precent: unknown key (expected one of at, duration, kind, zone, instance, region, percent, latency, jitter, name)"},
		{"odd unknown key", base + "\"a b\\n\": 1\n", `t.yaml:20: ["a b\n"]: unknown key (expected one of version, name, description, seed, duration, topology, load, canary, policy, faults, expect)`},
		{"non-scalar key", edit("  rps: 10", "  rps: 10\n  ? [x]\n  : 1"), "t.yaml:9: load: keys must be plain words, got a list as a key"},
		{"duplicate key", edit("name: t", "name: t\nname: u"), "t.yaml:3: name: duplicate key (first given at line 2)"},
		{"duplicate nested key", edit("    kind: packet_loss", "    kind: packet_loss\n    kind: reset"), "t.yaml:13: faults[0].kind: duplicate key (first given at line 12)"},
		{"missing top key", edit("load:\n  rps: 10\n", ""), "t.yaml:1: load: required"},
		{"missing nested key", edit("  zones: [a, b, c]\n", ""), "t.yaml:4: topology.zones: required"},

		// Types and top-level values.
		{"version 2", edit("version: 1", "version: 2"), "t.yaml:1: version: 2 is not supported (must be 1)"},
		{"version as string", edit("version: 1", `version: "1"`), `t.yaml:1: version: must be an integer, got string "1"`},
		{"bad name", edit("name: t", "name: T_1"), "t.yaml:2: name: T_1 is not a valid name ([a-z0-9-]{1,63})"},
		{"name too long", edit("name: t", "name: "+strings.Repeat("n", 64)), `t.yaml:2: name: "` + strings.Repeat("n", 40) + `..." is not a valid name ([a-z0-9-]{1,63})`},
		{"seed wrong type", edit("name: t", "name: t\nseed: 1.5"), "t.yaml:3: seed: must be an integer, got number 1.5"},
		{"description not text", edit("name: t", "name: t\ndescription: [a]"), "t.yaml:3: description: must be a string, got a list"},
		{"bad duration", edit("duration: 5m", "duration: 5 minutes"), `t.yaml:3: duration: "5 minutes" is not a valid duration (Go syntax with a unit, e.g. 90s, 2m, 1h30m)`},
		{"duration without unit", edit("duration: 5m", "duration: 300"), "t.yaml:3: duration: 300 is not a valid duration (Go syntax with a unit, e.g. 90s, 2m, 1h30m)"},
		{"duration too short", edit("duration: 5m", "duration: 9s"), "t.yaml:3: duration: 9s is out of range (10s <= duration <= 24h)"},
		{"duration too long", edit("duration: 5m", "duration: 25h"), "t.yaml:3: duration: 25h is out of range (10s <= duration <= 24h)"},
		{"duration null", edit("duration: 5m", "duration:"), "t.yaml:3: duration: must be a duration (e.g. 90s, 2m), got null"},

		// Topology.
		{"topology not a mapping", edit("topology:\n  zones: [a, b, c]\n  instances_per_zone: 2", "topology: [a, b, c]"), "t.yaml:4: topology: must be a mapping, got a list"},
		{"one zone", edit("zones: [a, b, c]", "zones: [a]"), "t.yaml:5: topology.zones: 1 zone given, need 2 to 6"},
		{"seven zones", edit("zones: [a, b, c]", "zones: [a, b, c, d, e, f, g]"), "t.yaml:5: topology.zones: 7 zones given, need 2 to 6"},
		{"duplicate zone", edit("zones: [a, b, c]", "zones: [a, b, a]"), "t.yaml:5: topology.zones[2]: zone \"a\" is listed twice"},
		{"bad zone id", edit("zones: [a, b, c]", "zones: [a, B, c]"), "t.yaml:5: topology.zones[1]: \"B\" is not a valid zone id ([a-z0-9-]{1,32})"},
		{"zone id not a string", edit("zones: [a, b, c]", "zones:\n    - a\n    - 1"), "t.yaml:7: topology.zones[1]: must be a string, got integer 1"},
		{"zones not a list", edit("zones: [a, b, c]", "zones: a"), `t.yaml:5: topology.zones: must be a list of zone ids, got string "a"`},
		{"no instances", edit("instances_per_zone: 2", "instances_per_zone: 0"), "t.yaml:6: topology.instances_per_zone: 0 is out of range (1 <= instances <= 1000)"},
		{"instances wrong type", edit("instances_per_zone: 2", "instances_per_zone: two"), `t.yaml:6: topology.instances_per_zone: must be an integer >= 1 or a mapping zone -> integer, got string "two"`},
		{"unknown zone in instances map", edit("instances_per_zone: 2", "instances_per_zone: {a: 1, b: 2, c: 3, d: 1}"), "t.yaml:6: topology.instances_per_zone.d: unknown zone (zones: a, b, c)"},
		{"zone missing from instances map", edit("instances_per_zone: 2", "instances_per_zone:\n    a: 1\n    b: 2"), "t.yaml:6: topology.instances_per_zone.c: required (every zone needs an instance count)"},
		{"zero in instances map", edit("instances_per_zone: 2", "instances_per_zone: {a: 1, b: 0, c: 3}"), "t.yaml:6: topology.instances_per_zone.b: 0 is out of range (1 <= instances <= 1000)"},
		{"database_zone unknown", edit("instances_per_zone: 2", "instances_per_zone: 2\n  database_zone: z"), "t.yaml:7: topology.database_zone: unknown zone \"z\" (zones: a, b, c)"},

		// Load.
		{"rps zero", edit("rps: 10", "rps: 0"), "t.yaml:8: load.rps: 0 is out of range (must be > 0)"},
		{"rps negative", edit("rps: 10", "rps: -2.5"), "t.yaml:8: load.rps: -2.5 is out of range (must be > 0)"},
		{"rps infinite", edit("rps: 10", "rps: .inf"), "t.yaml:8: load.rps: .inf is not a finite number"},
		{"rps wrong type", edit("rps: 10", "rps: fast"), `t.yaml:8: load.rps: must be a number, got string "fast"`},
		{"unknown operation", edit("rps: 10", "rps: 10\n  operations: {ride: 0.5, browse: 0.5}"), "t.yaml:9: load.operations.browse: unknown operation (catalogue: ride, pay, signin, home)"},
		{"shares not summing to 1", edit("rps: 10", "rps: 10\n  operations: {ride: 0.5, pay: 0.4}"), "t.yaml:9: load.operations: shares sum to 0.9, must sum to 1"},
		{"share out of range", edit("rps: 10", "rps: 10\n  operations:\n    ride: 1.5\n    pay: -0.5"), "t.yaml:10: load.operations.ride: 1.5 is out of range (0 <= share <= 1)"},
		{"steps not increasing", edit("rps: 10", "rps: 10\n  steps:\n    - {at: 2m, rps: 20}\n    - {at: 2m, rps: 30}"), "t.yaml:11: load.steps[1].at: 2m is not after the previous step's at (2m); steps must be in increasing order"},
		{"step after the end", edit("rps: 10", "rps: 10\n  steps: [{at: 5m, rps: 20}]"), "t.yaml:9: load.steps[0].at: 5m is out of range (0 <= at < duration 5m)"},
		{"step without rps", edit("rps: 10", "rps: 10\n  steps: [{at: 1m}]"), "t.yaml:9: load.steps[0].rps: required"},

		// Canary and policy.
		{"canary interval too short", base + "canary: {interval: 50ms}\n", "t.yaml:20: canary.interval: 50ms is out of range (100ms <= interval <= duration 5m)"},
		{"canary interval too long", base + "canary:\n  interval: 6m\n", "t.yaml:21: canary.interval: 6m is out of range (100ms <= interval <= duration 5m)"},
		{"negative policy", base + "policy:\n  control_plane_after: 0s\n  recovery_hold: -1s\n", "t.yaml:22: policy.recovery_hold: -1s is out of range (must be >= 0)"},

		// Faults.
		{"faults not a list", edit("faults:\n  - at: 30s", "faults: {at: 30s}\nx:\n  - at: 30s"), "t.yaml:9: faults: must be a list of faults, got a mapping"},
		{"fault without at", edit("  - at: 30s\n    duration: 1m", "  - duration: 1m"), "t.yaml:10: faults[0].at: required"},
		{"fault at the end", edit("at: 30s", "at: 5m"), "t.yaml:10: faults[0].at: 5m is out of range (0 <= at < duration 5m)"},
		{"fault at negative", edit("at: 30s", "at: -1s"), "t.yaml:10: faults[0].at: -1s is out of range (0 <= at < duration 5m)"},
		{"fault zero duration", edit("duration: 1m", "duration: 0s"), "t.yaml:11: faults[0].duration: 0s is out of range (must be > 0)"},
		{"fault without kind", edit("    kind: packet_loss\n", ""), "t.yaml:10: faults[0].kind: required"},
		{"unknown kind", edit("kind: packet_loss", "kind: drop"), "t.yaml:12: faults[0].kind: drop is not a fault kind (one of latency, packet_loss, blackhole, reset, http_error, slow, control_plane_outage, telemetry_loss, canary_failure)"},
		{"two targets", edit("    zone: a", "    zone: a\n    instance: a-1"), "t.yaml:14: faults[0].instance: conflicts with zone (a fault has exactly one target: zone, instance or region)"},
		{"no target", edit("    zone: a\n", ""), "t.yaml:10: faults[0]: no target (exactly one of zone, instance, region is required)"},
		{"unknown target zone", edit("    zone: a", "    zone: d"), "t.yaml:13: faults[0].zone: unknown zone \"d\" (zones: a, b, c)"},
		{"instance not existing", edit("    zone: a", "    instance: a-3"), "t.yaml:13: faults[0].instance: instance a-3 does not exist (zone a has 2 instances)"},
		{"instance in unknown zone", edit("    zone: a", "    instance: d-1"), "t.yaml:13: faults[0].instance: instance d-1 does not exist (no zone d; zones: a, b, c)"},
		{"instance bad format", edit("    zone: a", "    instance: a1"), "t.yaml:13: faults[0].instance: a1 is not an instance id (<zone>-<n>, n counted from 1)"},
		{"instance counted from 1", edit("    zone: a", "    instance: a-0"), "t.yaml:13: faults[0].instance: a-0 is not an instance id (<zone>-<n>, n counted from 1)"},
		{"region false", edit("    zone: a", "    region: false"), "t.yaml:13: faults[0].region: must be true when given (to target one zone or instance, use zone or instance)"},
		{"region not a bool", edit("    zone: a", "    region: yes"), `t.yaml:13: faults[0].region: must be true or false, got string "yes"`},
		{"percent out of range", edit("percent: 30", "percent: 150"), "t.yaml:14: faults[0].percent: 150 is out of range (0 < percent <= 100)"},
		{"percent zero", edit("percent: 30", "percent: 0"), "t.yaml:14: faults[0].percent: 0 is out of range (0 < percent <= 100)"},
		{"percent missing", edit("    percent: 30\n", ""), "t.yaml:10: faults[0].percent: required for kind packet_loss"},
		{"percent on blackhole", edit("kind: packet_loss", "kind: blackhole"), "t.yaml:14: faults[0].percent: percent not allowed for kind blackhole (only for packet_loss, reset, http_error)"},
		{"latency missing for slow", edit("    kind: packet_loss\n    zone: a\n    percent: 30", "    kind: slow\n    zone: a"), "t.yaml:10: faults[0].latency: required for kind slow"},
		{"latency zero", edit("    kind: packet_loss\n    zone: a\n    percent: 30", "    kind: latency\n    zone: a\n    latency: 0s"), "t.yaml:14: faults[0].latency: 0s is out of range (must be > 0)"},
		{"latency on packet_loss", edit("percent: 30", "percent: 30\n    latency: 1s"), "t.yaml:15: faults[0].latency: latency not allowed for kind packet_loss (only for latency, slow)"},
		{"jitter on packet_loss", edit("percent: 30", "percent: 30\n    jitter: 1s"), "t.yaml:15: faults[0].jitter: jitter not allowed for kind packet_loss (only for latency, slow)"},
		{"jitter above latency", edit("    kind: packet_loss\n    zone: a\n    percent: 30", "    kind: latency\n    zone: a\n    latency: 100ms\n    jitter: 200ms"), "t.yaml:15: faults[0].jitter: 200ms is larger than latency (100ms)"},
		{"control_plane_outage on a zone", edit("    kind: packet_loss\n    zone: a\n    percent: 30", "    kind: control_plane_outage\n    zone: a"), "t.yaml:13: faults[0].zone: control_plane_outage acts on the instance group, its target must be region: true"},
		{"canary_failure on an instance", edit("    kind: packet_loss\n    zone: a\n    percent: 30", "    kind: canary_failure\n    instance: a-1"), "t.yaml:13: faults[0].instance: canary_failure acts on a zone's canary calls, its target must be a zone or region: true"},
		{"percent on telemetry_loss", edit("kind: packet_loss", "kind: telemetry_loss"), "t.yaml:14: faults[0].percent: percent not allowed for kind telemetry_loss (only for packet_loss, reset, http_error)"},
		{"second fault", edit("    percent: 30\n", "    percent: 30\n  - {at: 1m, kind: reset, zone: b, percent: 101}\n"), "t.yaml:15: faults[1].percent: 101 is out of range (0 < percent <= 100)"},

		// Expect.
		{"expect shift unknown zone", edit("shift: {away_from: a, within: 60s}", "shift: {away_from: z}"), "t.yaml:16: expect.shift.away_from: unknown zone \"z\" (zones: a, b, c)"},
		{"expect shift bad word", edit("shift: {away_from: a, within: 60s}", "shift: nope"), "t.yaml:16: expect.shift: nope is not valid (the word none, or {away_from: ZONE, within: DURATION})"},
		{"expect shift without away_from", edit("shift: {away_from: a, within: 60s}", "shift: {within: 60s}"), "t.yaml:16: expect.shift.away_from: required"},
		{"expect shift within zero", edit("within: 60s", "within: 0s"), "t.yaml:16: expect.shift.within: 0s is out of range (must be > 0)"},
		{"expect control_plane not bool", edit("control_plane: true", "control_plane: 1"), "t.yaml:17: expect.control_plane: must be true or false, got integer 1"},
		{"expect recovered_within negative", edit("recovered_within: 2m", "recovered_within: -2m"), "t.yaml:18: expect.recovered_within: -2m is out of range (must be > 0)"},
		{"max_failed_ratio above 1", edit("max_failed_ratio: 0.1", "max_failed_ratio: 1.5"), "t.yaml:19: expect.max_failed_ratio: 1.5 is out of range (0 <= ratio <= 1)"},

		// Additions: fault names, shift.from, shift.one_episode, load.diurnal.
		{"fault name invalid", edit("    percent: 30\n", "    percent: 30\n    name: Gray\n"), "t.yaml:15: faults[0].name: Gray is not a valid fault name ([a-z0-9-]{1,63})"},
		{"fault name not a string", edit("    percent: 30\n", "    percent: 30\n    name: [x]\n"), "t.yaml:15: faults[0].name: must be a string, got a list"},
		{"fault name repeated", edit("    percent: 30\n", "    percent: 30\n    name: gray\n  - {at: 1m, kind: reset, zone: b, percent: 5, name: gray}\n"), "t.yaml:16: faults[1].name: gray is the name of an earlier fault (names must be unique)"},
		{"shift from unknown fault", strings.Replace(edit("    percent: 30\n", "    percent: 30\n    name: gray\n"), "within: 60s}", "within: 60s, from: grey}", 1), "t.yaml:17: expect.shift.from: no fault is named grey (names: gray)"},
		{"shift from with no names", edit("within: 60s}", "within: 60s, from: gray}"), "t.yaml:16: expect.shift.from: no fault is named gray (no fault has a name)"},
		{"shift one_episode not bool", edit("within: 60s}", "within: 60s, one_episode: yes}"), `t.yaml:16: expect.shift.one_episode: must be true or false, got string "yes"`},
		{"diurnal with steps", edit("  rps: 10\n", "  rps: 10\n  steps: [{at: 1m, rps: 20}]\n  diurnal: {min: 1, peak_at: 14h}\n"), "t.yaml:10: load.diurnal: conflicts with steps (a load is either stepped or diurnal)"},
		{"diurnal min above rps", edit("  rps: 10\n", "  rps: 10\n  diurnal: {min: 20, peak_at: 14h}\n"), "t.yaml:9: load.diurnal.min: 20 is more than load.rps (10), the day's peak"},
		{"diurnal min zero", edit("  rps: 10\n", "  rps: 10\n  diurnal: {min: 0, peak_at: 14h}\n"), "t.yaml:9: load.diurnal.min: 0 is out of range (must be > 0)"},
		{"diurnal peak_at past a day", edit("  rps: 10\n", "  rps: 10\n  diurnal: {min: 1, peak_at: 25h}\n"), "t.yaml:9: load.diurnal.peak_at: 25h is out of range (0s <= peak_at < 24h, a time of day)"},
		{"diurnal without peak_at", edit("  rps: 10\n", "  rps: 10\n  diurnal: {min: 1}\n"), "t.yaml:9: load.diurnal.peak_at: required"},
		{"diurnal unknown key", edit("  rps: 10\n", "  rps: 10\n  diurnal: {min: 1, peak_at: 2h, trough_at: 3h}\n"), "t.yaml:9: load.diurnal.trough_at: unknown key (expected one of min, peak_at)"},

		// Ordering: the first problem in the file wins, and a misspelt key is
		// reported rather than the required key it failed to provide.
		{"first error wins", strings.Replace(edit("name: t", "name: T"), "max_failed_ratio: 0.1", "max_failed_ratio: 2", 1), "t.yaml:2: name: T is not a valid name ([a-z0-9-]{1,63})"},
		{"faults before topology", "version: 1\nname: t\nduration: 1m\nfaults: [{at: 1s, kind: blackhole, zone: q}]\ntopology: {zones: [a, b], instances_per_zone: 1}\nload: {rps: 1}\n", "t.yaml:4: faults[0].zone: unknown zone \"q\" (zones: a, b)"},
		{"misspelt required key", edit("    kind: packet_loss", "    knd: packet_loss"), "t.yaml:12: faults[0].knd: unknown key (expected one of at, duration, kind, zone, instance, region, percent, latency, jitter, name)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse("t.yaml", []byte(c.src))
			if err == nil {
				t.Fatalf("no error, parsed %+v\n%s", s, c.src)
			}
			if s != nil {
				t.Errorf("scenario returned along with the error")
			}
			if err.Error() != c.want {
				t.Errorf("error\n got: %s\nwant: %s\nsource:\n%s", err, c.want, c.src)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Errorf("error is %T, want *Error", err)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mine.yaml")
	if err := os.WriteFile(p, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(p)
	if err != nil || s.File != p || s.Name != "t" {
		t.Fatalf("Open(file) = %+v, %v", s, err)
	}
	for _, n := range []string{"smoke", "smoke.yaml"} {
		s, err := Open(n)
		if err != nil || s.Name != "smoke" || s.File != "builtin:smoke.yaml" {
			t.Errorf("Open(%q) = %+v, %v", n, s, err)
		}
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(bad); err == nil || err.Error() != bad+":1: version: 2 is not supported (must be 1)" {
		t.Errorf("Open(bad) = %v", err)
	}
	_, err = Open("no-such-scenario")
	want := "open no-such-scenario: no such file (builtin scenarios: control-plane-outage, regional-db-latency, single-instance-errors, smoke, workshop-db-packet-loss, zone-latency-only)"
	if err == nil || err.Error() != want {
		t.Errorf("Open(missing) = %v, want %s", err, want)
	}
}

// weirdValues replace values in mutations: wrong types, edge numbers, YAML
// oddities.
var weirdValues = []string{"~", "[]", "{}", "[a, b]", "{a: 1}", "-1", "0", "1e400", ".nan", "-.inf", "99999999999999999999",
	`"x\ny"`, "!!int x", "!!binary aGk=", "!!float 1", "!custom 1", "1h", "-1h", "1ns", "24h1s", "true", "none", "a-1", "<<: {}", "&anc 5", "|\n  block\n  text"}

// mutations derives broken variants of a scenario: each line dropped,
// repeated, or given each weird value.
func mutations(src string) []string {
	lines := strings.Split(src, "\n")
	var out []string
	for i, l := range lines {
		drop := append(append([]string{}, lines[:i]...), lines[i+1:]...)
		dup := append(append(append([]string{}, lines[:i+1]...), l), lines[i+1:]...)
		out = append(out, strings.Join(drop, "\n"), strings.Join(dup, "\n"))
		k := strings.Index(l, ": ")
		if k < 0 {
			continue
		}
		for _, w := range weirdValues {
			m := append([]string{}, lines...)
			m[i] = l[:k+2] + w
			out = append(out, strings.Join(m, "\n"))
		}
	}
	return out
}

func checkError(t *testing.T, file string, err error) {
	t.Helper()
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("multi-line error: %q", msg)
	}
	if !strings.HasPrefix(msg, file+":") {
		t.Fatalf("error does not start with the file name: %q", msg)
	}
	var e *Error
	if !errors.As(err, &e) || e.Line < 1 {
		t.Fatalf("error %q is not an *Error with a line", msg)
	}
}

// TestMutations runs many near-valid files through Parse: it must not panic,
// and each error must be one line naming the file.
func TestMutations(t *testing.T) {
	srcs := []string{base}
	for _, n := range BuiltinNames() {
		data, _ := builtinFS.ReadFile("builtin/" + n + ".yaml")
		srcs = append(srcs, string(data))
	}
	for _, src := range srcs {
		for _, m := range mutations(src) {
			if _, err := Parse("m.yaml", []byte(m)); err != nil {
				checkError(t, "m.yaml", err)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range BuiltinNames() {
		data, _ := builtinFS.ReadFile("builtin/" + n + ".yaml")
		f.Add(data)
	}
	for _, p := range publicFiles(f) {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(base))
	for i, m := range mutations(base) {
		if i%7 == 0 { // a sample is enough to give the fuzzer structure
			f.Add([]byte(m))
		}
	}
	f.Add([]byte("a: &x [*x]\nb: *x\n"))
	f.Add([]byte("topology: {zones: [a, b], instances_per_zone: {a: 1, b: 2}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			checkError(t, "fuzz.yaml", err)
			if s != nil {
				t.Fatalf("scenario returned along with error %q", err)
			}
			return
		}
		// Whatever parses must satisfy the contract's invariants.
		if s.Version != 1 || s.Duration < MinDuration || s.Duration > MaxDuration {
			t.Fatalf("invalid scenario accepted: %+v", s)
		}
		tp := s.Topology
		if len(tp.Zones) < MinZones || len(tp.Zones) > MaxZones || len(tp.Instances) != len(tp.Zones) {
			t.Fatalf("bad topology accepted: %+v", tp)
		}
		for _, z := range tp.Zones {
			if tp.Instances[z] < 1 {
				t.Fatalf("zone %s without instances: %+v", z, tp)
			}
		}
		sum := 0.0
		for _, m := range s.Load.Mix {
			sum += m.Share
		}
		if math.Abs(sum-1) > 1e-9 || !(s.Load.RPS > 0) {
			t.Fatalf("bad load accepted: %+v", s.Load)
		}
		for _, fl := range s.Faults {
			n := 0
			if fl.Target.Zone != "" {
				n++
			}
			if fl.Target.Instance != "" {
				n++
			}
			if fl.Target.Region {
				n++
			}
			if n != 1 || fl.At < 0 || fl.At >= s.Duration || fl.Jitter > fl.Latency {
				t.Fatalf("bad fault accepted: %+v", fl)
			}
		}
	})
}

func TestAdditionsParse(t *testing.T) {
	src := strings.Replace(strings.Replace(base, "  rps: 10\n", "  rps: 10\n  diurnal: {min: 2, peak_at: 14h}\n", 1),
		"    percent: 30\n", "    percent: 30\n    name: gray\n", 1)
	src = strings.Replace(src, "within: 60s}", "within: 60s, from: gray, one_episode: true}", 1)
	s, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if s.Faults[0].Name != "gray" || s.Expect.Shift.From != "gray" || !s.Expect.Shift.OneEpisode {
		t.Errorf("fault %+v, expect %+v", s.Faults[0], s.Expect.Shift)
	}
	// A cosine from 2 req/s at 02:00 to 10 at 14:00.
	for _, c := range []struct {
		at   time.Duration
		want float64
	}{{14 * time.Hour, 10}, {2 * time.Hour, 2}, {8 * time.Hour, 6}, {20 * time.Hour, 6}, {38 * time.Hour, 10}} {
		if got := s.Load.RPSAt(c.at); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("RPSAt(%s) = %g, want %g", c.at, got, c.want)
		}
	}
}
