// Package config reads the configuration of grayzone serve: where it listens,
// which resources it guards, each resource's front door, detector, canaries,
// autoshift policy and practice runs.
//
// Validation is strict and happens at start: unknown keys, wrong types, bad
// durations, out-of-range values and references to zones or alarms that do
// not exist are errors, each one line naming the file, the line and the key:
//
//	serve.yaml:14: resources[0].zones[1]: zone "use2-az1" is listed twice
package config

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/grayzone/grayzone/internal/bearer"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/grayzone/grayzone/engine/detect"
	"github.com/grayzone/grayzone/engine/outlier"
	"github.com/grayzone/grayzone/server/practice"
	"github.com/grayzone/grayzone/telemetry/operation"
)

// Defaults and limits of the format.
const (
	DefaultListen  = "127.0.0.1:8080"
	DefaultDataDir = "./grayzone-data"
	MinZones       = 2
	MaxZones       = 6

	DefaultHealthPath         = "/health"
	DefaultHealthInterval     = 5 * time.Second
	DefaultHealthTimeout      = 2 * time.Second
	DefaultHealthyThreshold   = 2
	DefaultUnhealthyThreshold = 2

	DefaultFalseAlarmRate = 1e-6
	DefaultMinInstances   = 2

	DefaultCanaryInterval = 10 * time.Second

	DefaultMinInterval       = 10 * time.Minute
	DefaultExpiresIn         = 72 * time.Hour
	DefaultControlPlaneAfter = 30 * time.Second
	DefaultRecoveryHold      = 60 * time.Second

	DefaultPracticeInterval = 168 * time.Hour
	DefaultPracticeDuration = 30 * time.Minute

	// FrontDoorEmbedded is grayzone's own zone-aware proxy.
	FrontDoorEmbedded = "embedded"
	// MinTokenLen keeps guessable tokens out: 16 characters of the token
	// alphabet is about 96 bits even for hex.
	MinTokenLen = 16
)

// FrontDoorTypes lists the known front door types.
var FrontDoorTypes = []string{FrontDoorEmbedded, FrontDoorHAProxy, FrontDoorXDS, FrontDoorARC, FrontDoorKubernetesSlices}

// Config is grayzone serve's configuration.
type Config struct {
	Listen  string // API and dashboard address
	DataDir string
	TLS     TLS // the API's and dashboard's certificate (none: plain HTTP)
	// Store is a postgres:// URL shared by replicas; empty: SQLite under DataDir.
	Store string
	// StoreFile holds the store's URL instead (a mounted Secret: the URL
	// has the password); LoadStore reads it into Store.
	StoreFile string
	Replica   Replica
	Auth      Auth
	Resources []Resource
	// LeaderElection: which replica acts, when several run (kubernetes.go).
	LeaderElection LeaderElection
	// Notifications: Alertmanagers and webhooks told of events (notifications.go).
	Notifications Notifications
	File          string // the file it was read from (labels errors)
}

// Auth says who may use the API. Tokens are never given on the command line,
// where any user of the machine could read them.
type Auth struct {
	// TokensFile holds one "name:token" a line; resolved against the config
	// file's directory, so it is usable as is. Empty: none.
	TokensFile string
	Tokens     []Token // inline tokens (discouraged: the config is less guarded than a tokens file)
	OpenReads  bool    // GETs need no token
	// MetricsOpen says whether GET /metrics needs no token; nil: as OpenReads.
	MetricsOpen *bool
}

// MetricsNeedToken reports whether /metrics is closed to callers without a token.
func (a Auth) MetricsNeedToken() bool {
	if a.MetricsOpen != nil {
		return !*a.MetricsOpen
	}
	return !a.OpenReads
}

// Resource is one service grayzone guards.
type Resource struct {
	Name  string
	Zones []string
	// MinCapacity is how many targets must remain outside a shifted zone.
	MinCapacity int
	FrontDoor   FrontDoor
	// Operations gives each operation's latency threshold: a request slower
	// than this counts as slow.
	Operations map[string]time.Duration
	Detector   Detector
	Canaries   []Canary
	Autoshift  Autoshift
	Practice   Practice
	// ControlPlane is where exclusions happen; none: the runbook only shifts traffic.
	ControlPlane ControlPlane
	Telemetry    Telemetry // caps and sources (telemetry.go)
}

// FrontDoor is the resource's load balancer.
type FrontDoor struct {
	Type        string
	Regional    string            // listen address of the regional endpoint
	Zonal       map[string]string // zone -> listen address of its zonal endpoint
	Targets     []Target
	HealthCheck HealthCheck
	// Record: the front door counts every request it proxies as a
	// server-side observation (default true). Turn it off when the instances
	// post their own server-side observations, or each request counts twice.
	Record bool
	// RecordZonal: the zonal endpoints' requests are recorded too (default
	// false: there the caller chooses the zone; see docs/security.md).
	RecordZonal bool
	// Limits bound what clients may send and how slowly.
	Limits Limits
	// HAProxy is set for type haproxy (dataplanes.go); Targets are then
	// its servers, without addresses.
	HAProxy HAProxy
	// XDSListen is the xDS server's address for type xds (dataplanes.go),
	// XDSSecurity its mutual TLS (xds.go).
	XDSListen   string
	XDSSecurity XDSSecurity
	// ResourceIdentifier is the ARN of the load balancer ARC shifts (type arc).
	ResourceIdentifier string
	// KubernetesSlices is set for type kubernetes-endpointslices (kubernetes.go).
	KubernetesSlices KubernetesSlices
}

// Target is one backend instance.
type Target struct {
	ID   string
	Zone string
	Addr string // host:port
}

// HealthCheck is the front door's health check of its targets.
type HealthCheck struct {
	Path               string
	Interval, Timeout  time.Duration
	HealthyThreshold   int
	UnhealthyThreshold int
}

// Detector configures the detection engine.
type Detector struct {
	Profile        string
	FalseAlarmRate float64
	MinInstances   int
	// Outlier picks the default profile's outlier test (empty: 3× and 1
	// point above the other zones' pooled rate).
	Outlier outlier.Config
}

// Canary probes one URL on behalf of one zone.
type Canary struct {
	Zone     string
	URL      string
	Interval time.Duration
}

// Autoshift is the policy for automatic zonal shifts.
type Autoshift struct {
	Enabled  bool
	DryRun   bool // decide and record, act on nothing
	Approval bool // decisions wait for an operator
	// MinInterval separates two automatic shifts of the resource.
	MinInterval time.Duration
	// ExpiresIn is the expiry of an automatic shift.
	ExpiresIn         time.Duration
	ControlPlaneAfter time.Duration
	RecoveryHold      time.Duration
}

// Control plane types.
const (
	ControlPlaneNone    = "none"
	ControlPlaneCommand = "command"
	// DefaultControlPlaneTimeout bounds one control-plane command.
	DefaultControlPlaneTimeout = 30 * time.Second
)

// ControlPlaneTypes lists the known control plane types.
var ControlPlaneTypes = []string{ControlPlaneNone, ControlPlaneCommand, ControlPlaneAutoScaling, ControlPlaneKubernetes}

// ControlPlane configures the control-plane side of the runbook.
type ControlPlane struct {
	Type string
	// Commands maps exclude_zone, include_zone and remove_extra to an argv.
	Commands map[string][]string
	// Groups are the EC2 Auto Scaling groups of type autoscaling.
	Groups  []string
	Timeout time.Duration
	// Kubernetes is type kubernetes's configuration.
	Kubernetes KubernetesControl
	// Env names the variables of serve's environment a command gets
	// (type command; nil: command.DefaultEnv), see command_env.go.
	Env []string
}

// Practice configures practice runs; the embedded practice.Config is what
// practice.New takes.
type Practice struct {
	Enabled bool
	practice.Config
}

// Load reads and validates the configuration in path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Resource returns the resource called name.
func (c *Config) Resource(name string) (*Resource, bool) {
	for i := range c.Resources {
		if c.Resources[i].Name == name {
			return &c.Resources[i], true
		}
	}
	return nil, false
}

// DetectConfig is the detection engine's configuration for r.
func (r *Resource) DetectConfig() detect.Config {
	return detect.Config{
		Profile:        r.Detector.Profile,
		Zones:          slices.Clone(r.Zones),
		Thresholds:     cloneMap(r.Operations),
		MinInstances:   r.Detector.MinInstances,
		FalseAlarmRate: r.Detector.FalseAlarmRate,
		Outlier:        r.Detector.Outlier,
		SilenceWindow:  r.SilenceWindow(),
	}
}

func cloneMap(m map[string]time.Duration) map[string]time.Duration {
	out := make(map[string]time.Duration, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// defaultOperations are the workshop's operations with their thresholds.
func defaultOperations() map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, op := range operation.Catalog {
		out[op.Name] = op.Threshold
	}
	return out
}

// AlarmNames lists the alarms the detection engine (default profile) has
// for a resource over zones, the names practice runs may refer to:
// regional-impact, then per zone <zone>-isolated-impact,
// <zone>-availability-impact and <zone>-latency-impact.
func AlarmNames(zones []string) []string {
	out := []string{"regional-impact"}
	for _, z := range zones {
		out = append(out, detect.IsolatedAlarmName(z), z+"-availability-impact", z+"-latency-impact")
	}
	return out
}

// LoadTokens returns the API's bearer tokens: the inline ones, then those
// of the tokens file. A token is "name:secret" (the name is what shifts and
// the audit log show as who acted); a bare secret, the older form, is still
// accepted and named after its place ("unnamed-line-3", "unnamed-inline-1").
// In the file, blank lines and lines starting with # are ignored; a named
// file that is missing or holds no token is an error, as a typo there would
// otherwise lock every writer out silently. Names and secrets must be unique.
func (c *Config) LoadTokens() ([]Token, error) {
	tokens := slices.Clone(c.Auth.Tokens)
	if c.Auth.TokensFile == "" {
		return tokens, nil
	}
	name := c.Auth.TokensFile
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("auth.tokens_file: %w", err)
	}
	firstSecret, firstName := map[string]int{}, map[string]int{}
	for _, t := range tokens {
		firstName[t.Name] = 0
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		l := string(bytes.TrimSpace(sc.Bytes()))
		if l == "" || l[0] == '#' {
			continue
		}
		// Never echo a token: error messages end up in logs.
		t, msg := parseToken(l, fmt.Sprintf("unnamed-line-%d", line))
		if msg != "" {
			return nil, fmt.Errorf("%s:%d: %s", name, line, msg)
		}
		if l, dup := firstSecret[t.Secret]; dup {
			return nil, fmt.Errorf("%s:%d: duplicate token (first on line %d)", name, line, l)
		}
		if l, dup := firstName[t.Name]; dup {
			if l == 0 {
				return nil, fmt.Errorf("%s:%d: token name %q is also an inline token's (auth.tokens)", name, line, t.Name)
			}
			return nil, fmt.Errorf("%s:%d: duplicate token name %q (first on line %d)", name, line, t.Name, l)
		}
		firstSecret[t.Secret], firstName[t.Name] = line, line
		tokens = append(tokens, t)
		n++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no tokens (one name:token a line; blank lines and # comments are ignored)", name)
	}
	return tokens, nil
}

// Token is one bearer token, its name and its scopes (internal/bearer).
type Token = bearer.Token

// tokenNameRe is what a token's name may be: it is shown in shifts, the
// audit log and logs.
var tokenNameRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,63}$`)

// parseToken reads "name:secret", "name:secret:scopes" or a bare secret
// (named unnamed) — see tokens.go; the problem, if any, never shows the secret.
func parseToken(s, unnamed string) (Token, string) { return parseScopedToken(s, unnamed) }

// tokenProblem says what is wrong with a bearer token, without showing it.
func tokenProblem(t string) string {
	if !tokenRe.MatchString(t) {
		return "invalid token (bearer tokens use only A-Z a-z 0-9 - . _ ~ + / and trailing =)"
	}
	if len(t) < MinTokenLen {
		return fmt.Sprintf("token too short (%d characters, need at least %d; e.g. openssl rand -hex 32)", len(t), MinTokenLen)
	}
	return ""
}
