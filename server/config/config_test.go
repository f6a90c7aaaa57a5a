package config

import (
	"errors"
	"fmt"
	"github.com/grayzone/grayzone/internal/bearer"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/server/practice"
)

func TestExample(t *testing.T) {
	path := filepath.Join("..", "..", "examples", "serve.yaml")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("Listen", c.Listen, "127.0.0.1:8080")
	check("DataDir", c.DataDir, "./grayzone-data")
	check("Auth", c.Auth, Auth{TokensFile: filepath.Join("..", "..", "examples", "tokens.txt"), OpenReads: true})
	check("File", c.File, path)
	if len(c.Resources) != 1 {
		t.Fatalf("resources: %+v", c.Resources)
	}
	r, ok := c.Resource("web")
	if !ok {
		t.Fatal("no resource web")
	}
	zones := []string{"use2-az1", "use2-az2", "use2-az3"}
	check("Zones", r.Zones, zones)
	check("MinCapacity", r.MinCapacity, 2)
	check("FrontDoor.Type", r.FrontDoor.Type, "embedded")
	check("Regional", r.FrontDoor.Regional, "127.0.0.1:8081")
	check("Zonal", r.FrontDoor.Zonal, map[string]string{"use2-az1": "127.0.0.1:8091", "use2-az2": "127.0.0.1:8092", "use2-az3": "127.0.0.1:8093"})
	if len(r.FrontDoor.Targets) != 6 {
		t.Fatalf("targets: %+v", r.FrontDoor.Targets)
	}
	for i, tg := range r.FrontDoor.Targets {
		want := Target{ID: "web-" + string(rune('1'+i)), Zone: zones[i/2], Addr: "127.0.0.1:900" + string(rune('1'+i))}
		check("target", tg, want)
	}
	check("HealthCheck", r.FrontDoor.HealthCheck, HealthCheck{Path: "/health", Interval: 5 * time.Second, Timeout: 2 * time.Second, HealthyThreshold: 2, UnhealthyThreshold: 2})
	ms := 100 * time.Millisecond
	check("Operations", r.Operations, map[string]time.Duration{"ride": ms, "pay": ms, "signin": ms, "home": ms})
	check("Operations (the workshop's)", r.Operations, defaultOperations())
	check("Detector", r.Detector, Detector{Profile: "default", FalseAlarmRate: 1e-6, MinInstances: 2})
	check("Canaries", r.Canaries, []Canary{
		{"use2-az1", "http://127.0.0.1:8091", 10 * time.Second},
		{"use2-az2", "http://127.0.0.1:8092", 10 * time.Second},
		{"use2-az3", "http://127.0.0.1:8093", 10 * time.Second},
	})
	check("Autoshift", r.Autoshift, Autoshift{Enabled: true, MinInterval: 10 * time.Minute, ExpiresIn: 72 * time.Hour,
		ControlPlaneAfter: 30 * time.Second, RecoveryHold: 60 * time.Second})
	check("Practice.Enabled", r.Practice.Enabled, false)
	check("Practice.Interval", r.Practice.Interval, 168*time.Hour)
	check("Practice.Duration", r.Practice.Duration, 30*time.Minute)
	check("OutcomeAlarms", r.Practice.OutcomeAlarms, []string{"regional-impact"})
	check("BlockingAlarms", r.Practice.BlockingAlarms, []string{"use2-az1-isolated-impact", "use2-az2-isolated-impact", "use2-az3-isolated-impact"})
	check("BlockedWindows", len(r.Practice.BlockedWindows), 2)
	check("BlockedDates", r.Practice.BlockedDates, []practice.Date{{Year: 2026, Month: 12, Day: 24}, {Year: 2026, Month: 12, Day: 31}})
	if err := r.Practice.Validate(); err != nil {
		t.Error(err)
	}

	dc := r.DetectConfig()
	check("DetectConfig", dc.Zones, zones)
	check("DetectConfig.Thresholds", dc.Thresholds, r.Operations)

	tokens, err := c.LoadTokens()
	if err != nil {
		t.Fatal(err)
	}
	check("tokens", tokens, []Token{{Name: "example", Secret: "example-token-replace-me-0123456789abcdef"},
		{Name: "app-telemetry", Secret: "example-ingest-token-replace-me-0123456789", Scopes: bearer.Ingest},
		{Name: "dashboard", Secret: "example-read-token-replace-me-0123456789abc", Scopes: bearer.Read},
		{Name: "oncall", Secret: "example-oncall-token-replace-me-0123456789abc", Scopes: bearer.Operate | bearer.Read}})

	// Enabling practice, as the example's comments say, is all it takes.
	data, _ := os.ReadFile(path)
	on := strings.Replace(string(data), "enabled: false", "enabled: true", 1)
	c2, err := Parse(path, []byte(on))
	if err != nil {
		t.Fatal(err)
	}
	check("practice enabled", c2.Resources[0].Practice.Enabled, true)
}

// base is a small valid configuration; error cases edit it. Lines:
//
//	1 listen            9 zonal        17 canaries
//	2 auth              10 targets     18   - canary
//	3 resources         11-16 targets  19 autoshift
//	4   - name                         20 practice
//	5 zones                            21   enabled
//	6 frontdoor                        22   outcome_alarms
//	7 type
//	8 regional
const base = `listen: 127.0.0.1:8080
auth: {tokens_file: tokens.txt}
resources:
  - name: web
    zones: [az1, az2, az3]
    frontdoor:
      type: embedded
      regional: 127.0.0.1:8081
      zonal: {az1: 127.0.0.1:8091, az2: 127.0.0.1:8092, az3: 127.0.0.1:8093}
      targets:
        - {id: w1, zone: az1, addr: 127.0.0.1:9001}
        - {id: w2, zone: az1, addr: 127.0.0.1:9002}
        - {id: w3, zone: az2, addr: 127.0.0.1:9003}
        - {id: w4, zone: az2, addr: 127.0.0.1:9004}
        - {id: w5, zone: az3, addr: 127.0.0.1:9005}
        - {id: w6, zone: az3, addr: 127.0.0.1:9006}
    canaries:
      - {zone: az1, url: "http://127.0.0.1:8091"}
    autoshift: {enabled: true}
    practice:
      enabled: true
      outcome_alarms: [regional-impact]
`

func TestBaseDefaults(t *testing.T) {
	c, err := Parse("serve.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Resources[0]
	if c.DataDir != DefaultDataDir || !c.Auth.OpenReads || c.Auth.TokensFile != "tokens.txt" {
		t.Errorf("top-level defaults: %+v", c)
	}
	if r.MinCapacity != 0 || r.Detector.MinInstances != 2 || r.Detector.Profile != "default" || r.Detector.FalseAlarmRate != 1e-6 {
		t.Errorf("resource defaults: %+v", r)
	}
	if r.Canaries[0].Interval != 10*time.Second || r.FrontDoor.HealthCheck.Path != "/health" {
		t.Errorf("canary/health defaults: %+v %+v", r.Canaries, r.FrontDoor.HealthCheck)
	}
	if !reflect.DeepEqual(r.Operations, defaultOperations()) {
		t.Errorf("operations: %v", r.Operations)
	}
	a := r.Autoshift
	if !a.Enabled || a.DryRun || a.Approval || a.MinInterval != 10*time.Minute || a.ExpiresIn != 72*time.Hour ||
		a.ControlPlaneAfter != 30*time.Second || a.RecoveryHold != time.Minute {
		t.Errorf("autoshift defaults: %+v", a)
	}
	if r.Practice.Interval != 168*time.Hour || r.Practice.Duration != 30*time.Minute {
		t.Errorf("practice defaults: %+v", r.Practice)
	}
	// An absolute tokens_file stays as given; a relative one follows the file.
	c, err = Parse(filepath.Join("etc", "serve.yaml"), []byte(base))
	if err != nil || c.Auth.TokensFile != filepath.Join("etc", "tokens.txt") {
		t.Errorf("relative tokens_file: %v, %v", c, err)
	}
}

func TestErrors(t *testing.T) {
	type edit struct{ old, new string }
	tests := []struct {
		name  string
		edits []edit
		doc   string // instead of editing base
		want  string
	}{
		{name: "empty", doc: "", want: "serve.yaml:1: empty file (expected a serve configuration: listen, data_dir, auth, resources)"},
		{name: "syntax", doc: "listen: [1\n", want: "serve.yaml:2: invalid YAML: did not find expected ',' or ']'"},
		{name: "top level list", doc: "- a\n", want: "serve.yaml:1: the top level must be a mapping (listen, data_dir, auth, resources), got a list"},
		{name: "two documents", doc: base + "---\nlisten: x\n", want: "serve.yaml:23: only one YAML document is allowed in a configuration file"},
		{name: "unknown top key", edits: []edit{{"listen:", "listne:"}},
			want: "serve.yaml:1: listne: unknown key (expected one of listen, data_dir, store, store_file, replica, tls_cert_file, tls_key_file, auth, resources, leader_election, notifications)"},
		{name: "duplicate key", edits: []edit{{"auth:", "listen: 127.0.0.1:1\nauth:"}},
			want: "serve.yaml:2: listen: duplicate key (first given at line 1)"},
		{name: "resources missing", doc: "listen: 127.0.0.1:8080\n", want: "serve.yaml:1: resources: required"},
		{name: "no resources", doc: "resources: []\n", want: "serve.yaml:1: resources: no resources (at least one is required)"},
		{name: "bad listen", edits: []edit{{"listen: 127.0.0.1:8080", "listen: localhost"}},
			want: `serve.yaml:1: listen: "localhost" is not a valid address (host:port, e.g. 127.0.0.1:8080)`},
		{name: "bad port", edits: []edit{{"listen: 127.0.0.1:8080", "listen: 127.0.0.1:http"}},
			want: `serve.yaml:1: listen: "127.0.0.1:http": port "http" is not a number from 0 to 65535`},
		{name: "listen reused", edits: []edit{{"regional: 127.0.0.1:8081", "regional: 127.0.0.1:8080"}},
			want: "serve.yaml:8: resources[0].frontdoor.regional: address 127.0.0.1:8080 is already used by listen"},
		{name: "default listen reused", edits: []edit{{"listen: 127.0.0.1:8080\n", ""}, {"regional: 127.0.0.1:8081", "regional: 127.0.0.1:8080"}},
			want: "serve.yaml:7: resources[0].frontdoor.regional: address 127.0.0.1:8080 is already used by listen (default)"},
		{name: "tokens_file wrong type", edits: []edit{{"{tokens_file: tokens.txt}", "{tokens_file: [a]}"}},
			want: "serve.yaml:2: auth.tokens_file: must be a string, got a list"},
		{name: "inline token too short, not echoed", edits: []edit{{"{tokens_file: tokens.txt}", "{tokens: [secret]}"}},
			want: "serve.yaml:2: auth.tokens[0]: token too short (6 characters, need at least 16; e.g. openssl rand -hex 32)"},
		{name: "inline token bad characters", edits: []edit{{"{tokens_file: tokens.txt}", `{tokens: ["a token with spaces in it"]}`}},
			want: "serve.yaml:2: auth.tokens[0]: invalid token (bearer tokens use only A-Z a-z 0-9 - . _ ~ + / and trailing =)"},
		{name: "closed reads without tokens", edits: []edit{{"{tokens_file: tokens.txt}", "{open_reads: false}"}},
			want: "serve.yaml:2: auth.open_reads: false, but no tokens are configured: nothing could use the API (set tokens_file)"},
		{name: "open_reads type", edits: []edit{{"{tokens_file: tokens.txt}", "{open_reads: yes please}"}},
			want: `serve.yaml:2: auth.open_reads: must be true or false, got string "yes please"`},
		{name: "resource name", edits: []edit{{"name: web", "name: Web"}},
			want: `serve.yaml:4: resources[0].name: "Web" is not a valid name ([a-z0-9-]{1,63})`},
		{name: "duplicate resource", doc: base + strings.Replace(strings.SplitN(base, "resources:\n", 2)[1], "80", "70", -1),
			want: `serve.yaml:23: resources[1].name: duplicate resource name "web" (first at line 4)`},
		{name: "duplicate zone", edits: []edit{{"[az1, az2, az3]", "[az1, az1, az3]"}},
			want: `serve.yaml:5: resources[0].zones[1]: zone "az1" is listed twice`},
		{name: "one zone", edits: []edit{{"[az1, az2, az3]", "[az1]"}},
			want: "serve.yaml:5: resources[0].zones: 1 zone given, need 2 to 6"},
		{name: "bad zone id", edits: []edit{{"[az1, az2, az3]", "[az1, AZ2, az3]"}},
			want: `serve.yaml:5: resources[0].zones[1]: "AZ2" is not a valid zone id ([a-z0-9-]{1,32})`},
		{name: "unknown resource key", edits: []edit{{"    canaries:", "    canary: {}\n    canaries:"}},
			want: "serve.yaml:17: resources[0].canary: unknown key (expected one of name, zones, min_capacity, frontdoor, operations, detector, canaries, autoshift, practice, control_plane, telemetry)"},
		{name: "frontdoor type", edits: []edit{{"type: embedded", "type: alb"}},
			want: `serve.yaml:7: resources[0].frontdoor.type: unknown front door type "alb" (known: embedded, haproxy, xds, arc, kubernetes-endpointslices)`},
		{name: "regional missing", edits: []edit{{"      regional: 127.0.0.1:8081\n", ""}},
			want: "serve.yaml:6: resources[0].frontdoor.regional: required"},
		{name: "zonal: unknown zone", edits: []edit{{"az3: 127.0.0.1:8093}", "az3: 127.0.0.1:8093, az4: 127.0.0.1:8094}"}},
			want: "serve.yaml:9: resources[0].frontdoor.zonal.az4: unknown zone (zones: az1, az2, az3)"},
		{name: "zonal: zone missing", edits: []edit{{", az3: 127.0.0.1:8093}", "}"}},
			want: "serve.yaml:9: resources[0].frontdoor.zonal.az3: required (every zone needs a zonal endpoint)"},
		{name: "zonal reuses regional", edits: []edit{{"az2: 127.0.0.1:8092", "az2: 127.0.0.1:8081"}},
			want: "serve.yaml:9: resources[0].frontdoor.zonal.az2: address 127.0.0.1:8081 is already used by resources[0].frontdoor.regional"},
		{name: "target duplicate id", edits: []edit{{"id: w2", "id: w1"}},
			want: `serve.yaml:12: resources[0].frontdoor.targets[1].id: duplicate target id "w1" (first at line 11)`},
		{name: "target unknown zone", edits: []edit{{"id: w6, zone: az3", "id: w6, zone: az9"}},
			want: `serve.yaml:16: resources[0].frontdoor.targets[5].zone: unknown zone "az9" (zones: az1, az2, az3)`},
		{name: "target addr without port", edits: []edit{{"addr: 127.0.0.1:9003", "addr: 127.0.0.1"}},
			want: `serve.yaml:13: resources[0].frontdoor.targets[2].addr: "127.0.0.1" is not a valid address (host:port, e.g. 127.0.0.1:8080)`},
		{name: "target addr port 0", edits: []edit{{"addr: 127.0.0.1:9003", "addr: 127.0.0.1:0"}},
			want: `serve.yaml:13: resources[0].frontdoor.targets[2].addr: "127.0.0.1:0": port "0" is not a number from 1 to 65535`},
		{name: "target duplicate addr", edits: []edit{{"addr: 127.0.0.1:9004", "addr: 127.0.0.1:9003"}},
			want: "serve.yaml:14: resources[0].frontdoor.targets[3].addr: duplicate target address 127.0.0.1:9003 (first at line 13)"},
		{name: "target is a listener", edits: []edit{{"addr: 127.0.0.1:9004", "addr: 127.0.0.1:8092"}},
			want: "serve.yaml:14: resources[0].frontdoor.targets[3].addr: address 127.0.0.1:8092 is a listen address (resources[0].frontdoor.zonal.az2)"},
		{name: "target unknown key", edits: []edit{{"{id: w1, zone: az1,", "{id: w1, zone: az1, weight: 2,"}},
			want: "serve.yaml:11: resources[0].frontdoor.targets[0].weight: unknown key (expected one of id, zone, addr)"},
		{name: "zone without targets", edits: []edit{{"        - {id: w5, zone: az3, addr: 127.0.0.1:9005}\n        - {id: w6, zone: az3, addr: 127.0.0.1:9006}\n", ""}},
			want: `serve.yaml:10: resources[0].frontdoor.targets: zone "az3" has no targets`},
		{name: "zone with fewer targets than min_instances (default)", edits: []edit{{"        - {id: w6, zone: az3, addr: 127.0.0.1:9006}\n", ""}},
			want: `serve.yaml:10: resources[0].frontdoor.targets: zone "az3" has 1 target(s), fewer than detector.min_instances (default 2): isolated impact could never be detected there; add targets or set detector.min_instances`},
		{name: "min_instances above a zone's targets", edits: []edit{{"    canaries:", "    detector: {min_instances: 3}\n    canaries:"}},
			want: `serve.yaml:17: resources[0].detector.min_instances: 3 exceeds the 2 target(s) of zone "az1": isolated impact could never be detected there`},
		{name: "min_capacity unreachable", edits: []edit{{"    canaries:", "    min_capacity: 5\n    canaries:"}},
			want: `serve.yaml:17: resources[0].min_capacity: 5 can never be met: shifting away from "az1" leaves 4 targets`},
		{name: "min_capacity negative", edits: []edit{{"    canaries:", "    min_capacity: -1\n    canaries:"}},
			want: "serve.yaml:17: resources[0].min_capacity: -1 is out of range (0..100000)"},
		{name: "health check timeout above interval", edits: []edit{{"    canaries:", "      health_check: {interval: 1s, timeout: 2s}\n    canaries:"}},
			want: "serve.yaml:17: resources[0].frontdoor.health_check.timeout: 2s is longer than the interval (1s)"},
		{name: "health check path", edits: []edit{{"    canaries:", "      health_check: {path: health}\n    canaries:"}},
			want: `serve.yaml:17: resources[0].frontdoor.health_check.path: "health" is not a URL path (e.g. /health)`},
		{name: "health check threshold", edits: []edit{{"    canaries:", "      health_check: {healthy_threshold: 0}\n    canaries:"}},
			want: "serve.yaml:17: resources[0].frontdoor.health_check.healthy_threshold: 0 is out of range (1..10)"},
		{name: "operation threshold not a duration", edits: []edit{{"    canaries:", "    operations: {ride: {latency_threshold: 100}}\n    canaries:"}},
			want: "serve.yaml:17: resources[0].operations.ride.latency_threshold: 100 is not a valid duration (Go syntax with a unit, e.g. 90s, 2m, 1h30m)"},
		{name: "operation threshold missing", edits: []edit{{"    canaries:", "    operations: {ride: {}}\n    canaries:"}},
			want: "serve.yaml:17: resources[0].operations.ride.latency_threshold: required"},
		{name: "operations empty", edits: []edit{{"    canaries:", "    operations: {}\n    canaries:"}},
			want: "serve.yaml:17: resources[0].operations: names no operation (omit operations for the workshop's: ride, pay, signin, home)"},
		{name: "unknown profile", edits: []edit{{"    canaries:", "    detector: {profile: fast}\n    canaries:"}},
			want: `serve.yaml:17: resources[0].detector.profile: unknown profile "fast" (known: default, cloudwatch)`},
		{name: "false alarm rate", edits: []edit{{"    canaries:", "    detector: {false_alarm_rate: 1}\n    canaries:"}},
			want: "serve.yaml:17: resources[0].detector.false_alarm_rate: 1 is out of range (0 < rate < 1)"},
		{name: "canary unknown zone", edits: []edit{{"{zone: az1, url:", "{zone: az7, url:"}},
			want: `serve.yaml:18: resources[0].canaries[0].zone: unknown zone "az7" (zones: az1, az2, az3)`},
		{name: "canary url scheme", edits: []edit{{`"http://127.0.0.1:8091"`, `"tcp://127.0.0.1:8091"`}},
			want: `serve.yaml:18: resources[0].canaries[0].url: "tcp://127.0.0.1:8091" is not an http(s) URL (e.g. http://127.0.0.1:8091)`},
		{name: "canary interval", edits: []edit{{`"http://127.0.0.1:8091"}`, `"http://127.0.0.1:8091", interval: 0s}`}},
			want: "serve.yaml:18: resources[0].canaries[0].interval: 0s is out of range (100ms..1h)"},
		{name: "autoshift expires_in", edits: []edit{{"{enabled: true}", "{expires_in: 73h}"}},
			want: "serve.yaml:19: resources[0].autoshift.expires_in: 73h is out of range (1m..72h)"},
		{name: "autoshift bad duration", edits: []edit{{"{enabled: true}", "{min_interval: 1d}"}},
			want: "serve.yaml:19: resources[0].autoshift.min_interval: 1d is not a valid duration (Go syntax with a unit, e.g. 90s, 2m, 1h30m)"},
		{name: "autoshift dry run with approval", edits: []edit{{"{enabled: true}", "{dry_run: true, approval: true}"}},
			want: "serve.yaml:19: resources[0].autoshift.approval: true with dry_run: true, but a dry run acts on nothing, so there is nothing to approve"},
		{name: "practice interval too short", edits: []edit{{"      enabled: true\n", "      enabled: true\n      interval: 30m\n"}},
			want: "serve.yaml:22: resources[0].practice.interval: 30m is out of range (must be >= 1h)"},
		{name: "practice duration not below interval", edits: []edit{{"      enabled: true\n", "      enabled: true\n      interval: 1h\n      duration: 1h\n"}},
			want: "serve.yaml:23: resources[0].practice.duration: 1h is not shorter than the interval (1h)"},
		{name: "practice unknown alarm", edits: []edit{{"[regional-impact]", "[regional-impact, web-availability]"}},
			want: `serve.yaml:22: resources[0].practice.outcome_alarms[1]: unknown alarm "web-availability" (valid: regional-impact, az1-isolated-impact, az1-availability-impact, az1-latency-impact, ...)`},
		{name: "practice alarm in both lists", edits: []edit{{"[regional-impact]", "[regional-impact]\n      blocking_alarms: [az1-isolated-impact, regional-impact]"}},
			want: `serve.yaml:23: resources[0].practice.blocking_alarms[1]: alarm "regional-impact" is also an outcome alarm (an alarm either judges a run or blocks it)`},
		{name: "practice enabled without outcome alarms", edits: []edit{{"      outcome_alarms: [regional-impact]\n", ""}},
			want: "serve.yaml:20: resources[0].practice.outcome_alarms: required when practice is enabled (a run is judged by its outcome alarms)"},
		{name: "practice bad window", edits: []edit{{"[regional-impact]", "[regional-impact]\n      blocked_windows: [\"Mon:09:00-Mon:17:00\", \"Mon:9-17\"]"}},
			want: `serve.yaml:23: resources[0].practice.blocked_windows[1]: "Mon:9-17" is not a valid window (Day:HH:MM-Day:HH:MM in UTC, e.g. Mon:09:00-Mon:17:00)`},
		{name: "practice window hour", edits: []edit{{"[regional-impact]", "[regional-impact]\n      blocked_windows: [\"Mon:09:00-Mon:24:00\"]"}},
			want: `serve.yaml:23: resources[0].practice.blocked_windows[0]: "Mon:09:00-Mon:24:00": hour 24 is out of range (00..23)`},
		{name: "practice duplicate window", edits: []edit{{"[regional-impact]", "[regional-impact]\n      blocked_windows:\n        - Fri:22:00-Mon:06:00\n        - Fri:22:00-Mon:06:00"}},
			want: "serve.yaml:25: resources[0].practice.blocked_windows[1]: duplicate window Fri:22:00-Mon:06:00 (first at line 24)"},
		{name: "practice bad date", edits: []edit{{"[regional-impact]", "[regional-impact]\n      blocked_dates: [2026-02-30]"}},
			want: `serve.yaml:23: resources[0].practice.blocked_dates[0]: "2026-02-30" is not a valid date (YYYY-MM-DD, e.g. 2026-12-24)`},
		{name: "practice date as YAML timestamp is fine, number is not", edits: []edit{{"[regional-impact]", "[regional-impact]\n      blocked_dates: [20261224]"}},
			want: "serve.yaml:23: resources[0].practice.blocked_dates[0]: must be a string, got integer 20261224"},
		{name: "first error in document order wins", edits: []edit{{"listen: 127.0.0.1:8080", "listen: nope"}, {"name: web", "name: WEB"}},
			want: `serve.yaml:1: listen: "nope" is not a valid address (host:port, e.g. 127.0.0.1:8080)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tt.doc
			if doc == "" && tt.edits != nil {
				doc = base
				for _, e := range tt.edits {
					if strings.Count(doc, e.old) != 1 {
						t.Fatalf("edit %q matches %d times", e.old, strings.Count(doc, e.old))
					}
					doc = strings.Replace(doc, e.old, e.new, 1)
				}
			}
			c, err := Parse("serve.yaml", []byte(doc))
			if err == nil {
				t.Fatalf("no error; got %+v", c)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
			var pe *Error
			if !errors.As(err, &pe) || strings.Contains(err.Error(), "\n") {
				t.Errorf("not a one-line *Error: %#v", err)
			}
		})
	}
}

func TestBlockedDateTimestamp(t *testing.T) {
	// Unquoted, 2026-12-24 is a YAML timestamp; it is still a date here.
	doc := strings.Replace(base, "[regional-impact]", "[regional-impact]\n      blocked_dates: [2026-12-24]", 1)
	c, err := Parse("serve.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Resources[0].Practice.BlockedDates; len(got) != 1 || got[0].String() != "2026-12-24" {
		t.Errorf("BlockedDates = %v", got)
	}
}

func TestLoadTokens(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := "0123456789abcdef0123"
	tests := []struct {
		name    string
		content string // "" with missing: no file
		missing bool
		inline  []Token
		want    []Token
		err     string
	}{
		{name: "tokens, comments, blanks", content: "# comment\n\n  alice:" + good + "  \r\n# x\nci-bot.2:ZZZZZZZZZZZZZZZZ==\n",
			want: []Token{{Name: "alice", Secret: good}, {Name: "ci-bot.2", Secret: "ZZZZZZZZZZZZZZZZ=="}}},
		{name: "bare tokens are named by line", content: "# c\n" + good + "\n", want: []Token{{Name: "unnamed-line-2", Secret: good}}},
		{name: "inline first", content: "bob:" + good + "\n", inline: []Token{{Name: "ops", Secret: "inline-token-0123456789"}}, want: []Token{{Name: "ops", Secret: "inline-token-0123456789"}, {Name: "bob", Secret: good}}},
		{name: "missing file", missing: true, err: "auth.tokens_file: open DIR/missing-file.txt: no such file or directory"},
		{name: "no tokens", content: "# only a comment\n\n", err: "DIR/no-tokens.txt: no tokens (one name:token a line; blank lines and # comments are ignored)"},
		{name: "short", content: "# c\nshort\n", err: "DIR/short.txt:2: token too short (5 characters, need at least 16; e.g. openssl rand -hex 32)"},
		{name: "short named", content: "alice:short\n", err: "DIR/short-named.txt:1: token too short (5 characters, need at least 16; e.g. openssl rand -hex 32)"},
		{name: "bad name", content: "al ice:" + good + "\n", err: "DIR/bad-name.txt:1: invalid token name before the colon (names use only A-Z a-z 0-9 . _ - and are at most 63 characters)"},
		{name: "spaces", content: good + " trailing words\n", err: "DIR/spaces.txt:1: invalid token (bearer tokens use only A-Z a-z 0-9 - . _ ~ + / and trailing =)"},
		{name: "duplicate", content: "a:" + good + "\nb:" + good + "\n", err: "DIR/duplicate.txt:2: duplicate token (first on line 1)"},
		{name: "duplicate name", content: "a:" + good + "\na:" + good + "x\n", err: `DIR/duplicate-name.txt:2: duplicate token name "a" (first on line 1)`},
		{name: "scoped tokens", content: "app:" + good + ":ingest\nboard:" + good + "x:read,operate\n",
			want: []Token{{Name: "app", Secret: good, Scopes: bearer.Ingest}, {Name: "board", Secret: good + "x", Scopes: bearer.Read | bearer.Operate}}},
		{name: "unknown scope", content: "app:" + good + ":admin\n", err: `DIR/unknown-scope.txt:1: after the second colon: unknown scope "admin" (scopes: ingest, operate, read)`},
		{name: "name of an inline token", content: "ops:" + good + "\n", inline: []Token{{Name: "ops", Secret: "inline-token-0123456789"}}, err: `DIR/name-of-an-inline-token.txt:1: token name "ops" is also an inline token's (auth.tokens)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := strings.ReplaceAll(tt.name, " ", "-")
			file = strings.ReplaceAll(file, ",", "") + ".txt"
			path := filepath.Join(dir, file)
			if !tt.missing {
				path = write(file, tt.content)
			}
			c := &Config{Auth: Auth{TokensFile: path, Tokens: tt.inline}}
			got, err := c.LoadTokens()
			if tt.err != "" {
				want := strings.ReplaceAll(tt.err, "DIR", dir)
				if err == nil || err.Error() != want {
					t.Fatalf("err = %v, want %s", err, want)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("LoadTokens() = %v, %v, want %v", got, err, tt.want)
			}
		})
	}
	// A Token prints as its name only.
	tok := Token{Name: "alice", Secret: good}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(f, tok); strings.Contains(out, good) {
			t.Errorf("%s of a Token shows its secret: %s", f, out)
		}
	}
	// No tokens file: the inline tokens, possibly none.
	if got, err := (&Config{}).LoadTokens(); err != nil || len(got) != 0 {
		t.Errorf("no tokens: %v, %v", got, err)
	}
}

func TestAlarmNames(t *testing.T) {
	want := []string{"regional-impact",
		"a-isolated-impact", "a-availability-impact", "a-latency-impact",
		"b-isolated-impact", "b-availability-impact", "b-latency-impact"}
	if got := AlarmNames([]string{"a", "b"}); !reflect.DeepEqual(got, want) {
		t.Errorf("AlarmNames = %v", got)
	}
}

func TestDetectorOutlier(t *testing.T) {
	base := func(extra string) string {
		data, err := os.ReadFile("../../examples/serve.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Replace(string(data), "      min_instances: 2\n", "      min_instances: 2\n"+extra, 1)
	}
	c, err := Parse("x.yaml", []byte(base("      outlier: chi-squared\n      outlier_threshold: 0.01\n")))
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Resources[0].DetectConfig().Outlier; o.Method != "chi-squared" || o.Threshold != 0.01 {
		t.Errorf("outlier = %+v", o)
	}
	for _, bad := range []string{"      outlier: vibes\n", "      outlier_threshold: 2\n", "      outlier: mad\n      outlier_threshold: -1\n"} {
		if _, err := Parse("x.yaml", []byte(base(bad))); err == nil || !strings.HasPrefix(err.Error(), "x.yaml:") || !strings.Contains(err.Error(), "outlier") {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}

func TestKubernetes(t *testing.T) {
	doc := base + `    control_plane:
      type: kubernetes
      workloads:
        - {namespace: shop, deployment: web}
leader_election:
  type: kubernetes-lease
  lease_duration: 6s
  renew_deadline: 4s
  retry_period: 1s
`
	c, err := Parse("serve.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	cp := c.Resources[0].ControlPlane
	if cp.Type != ControlPlaneKubernetes || cp.Kubernetes.ZoneLabel != DefaultZoneLabel ||
		!reflect.DeepEqual(cp.Kubernetes.Workloads, []Workload{{Namespace: "shop", Name: "web"}}) {
		t.Errorf("control plane: %+v", cp)
	}
	want := LeaderElection{Type: LeaderElectionKubernetes, Name: DefaultLeaseName, LeaseDuration: 6 * time.Second, RenewDeadline: 4 * time.Second, RetryPeriod: time.Second}
	if c.LeaderElection != want {
		t.Errorf("leader election = %+v, want %+v", c.LeaderElection, want)
	}
	if c, err := Parse("serve.yaml", []byte(base)); err != nil || c.LeaderElection.Type != LeaderElectionNone {
		t.Errorf("default leader election: %+v %v", c.LeaderElection, err)
	}
	for _, tc := range []struct{ old, new, want string }{
		{"type: kubernetes\n", "type: kubernetes\n      zone_label: 'bad label'\n",
			`serve.yaml:25: resources[0].control_plane.zone_label: "bad label" is not a label key (e.g. topology.kubernetes.io/zone)`},
		{"{namespace: shop, deployment: web}", "{namespace: shop}", "serve.yaml:26: resources[0].control_plane.workloads[0].deployment: required"},
		{"{namespace: shop, deployment: web}", "{namespace: Shop, deployment: web}",
			`serve.yaml:26: resources[0].control_plane.workloads[0].namespace: "Shop" is not a Kubernetes name (lower case letters, digits, -)`},
		{"type: kubernetes\n", "type: command\n      exclude_zone: [a]\n      include_zone: [a]\n      remove_extra: [a]\n",
			`serve.yaml:28: resources[0].control_plane.workloads: only for type "kubernetes"`},
		{"type: kubernetes-lease", "type: etcd", `serve.yaml:28: leader_election.type: unknown leader election type "etcd" (known: none, kubernetes-lease)`},
		{"renew_deadline: 4s", "renew_deadline: 7s", "serve.yaml:27: leader_election: renew_deadline (7s) must be shorter than lease_duration (6s)"},
		{"lease_duration: 6s", "lease_duration: six", "serve.yaml:29: leader_election.lease_duration: six is not a valid duration (Go syntax with a unit, e.g. 90s, 2m, 1h30m)"},
	} {
		_, err := Parse("serve.yaml", []byte(strings.Replace(doc, tc.old, tc.new, 1)))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q -> %q:\n got %v\nwant %s", tc.old, tc.new, err, tc.want)
		}
	}
	// Two elections could pick two leaders, and then nobody acts.
	for _, store := range []string{"store: postgres://gz@db/gz\n", "store_file: /run/secrets/dsn\n"} {
		_, err := Parse("serve.yaml", []byte(store+doc))
		if err == nil || !strings.Contains(err.Error(), `leader_election: type "kubernetes-lease" with a shared store`) {
			t.Errorf("%s: err = %v", strings.TrimSpace(store), err)
		}
	}
}
