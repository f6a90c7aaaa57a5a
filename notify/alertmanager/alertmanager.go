// Package alertmanager posts grayzone's conditions to Alertmanager's v2 API
// (POST /api/v2/alerts) the way Prometheus does, so on-call teams route,
// group, silence and inhibit them like any other alert.
//
// A condition is an alert while it lasts: a shift active (GrayzoneShiftActive),
// a decision waiting for approval (GrayzoneApprovalPending), fail static
// (GrayzoneFailStatic), an actuator failing (GrayzoneActuatorFailing). Its
// start is posted with endsAt ResendEvery×4 ahead, resent every ResendEvery
// while it lasts (as Prometheus resends firing alerts, every minute by
// default, with endsAt four intervals ahead: should grayzone die, the alert
// resolves itself), and resolved by posting it with endsAt set to when the
// condition ended. Every other event is for webhooks.
package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/grayzone/grayzone/notify"
	"github.com/grayzone/grayzone/notify/event"
)

// The alert names.
const (
	ShiftActive     = "GrayzoneShiftActive"
	ApprovalPending = "GrayzoneApprovalPending"
	FailStatic      = "GrayzoneFailStatic"
	ActuatorFailing = "GrayzoneActuatorFailing"
)

// severity is fixed per alert name, so a resolution carries the labels its
// firing had.
var severity = map[string]string{ShiftActive: "warning", ApprovalPending: "critical", FailStatic: "warning", ActuatorFailing: "warning"}

// Alert is one alert as Alertmanager's v2 API takes it.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// key identifies an alert by its labels, as Alertmanager's fingerprint does.
func (a Alert) key() string {
	ks := make([]string, 0, len(a.Labels))
	for k, v := range a.Labels {
		ks = append(ks, k+"="+v)
	}
	sort.Strings(ks)
	return strings.Join(ks, ",")
}

// For maps an event to the alert it starts (firing) or ends (!firing); ok
// is false for events that are no alert's edge.
func For(e event.Event) (a Alert, firing, ok bool) {
	var name string
	labels := map[string]string{"resource": e.Resource, "zone": e.Zone}
	switch e.Kind {
	case event.ShiftStarted, event.ShiftEnded:
		name, firing = ShiftActive, e.Kind == event.ShiftStarted
	case event.ApprovalPending, event.ApprovalGiven:
		name, firing = ApprovalPending, e.Kind == event.ApprovalPending
		labels["decision"] = e.DecisionID
	case event.FailStaticEntered, event.FailStaticLeft:
		name, firing = FailStatic, e.Kind == event.FailStaticEntered
		labels["reason"] = e.Reason
	case event.ActuatorFailed, event.ActuatorRecovered:
		name, firing = ActuatorFailing, e.Kind == event.ActuatorFailed
		labels["action"] = e.Action
	default:
		return Alert{}, false, false
	}
	labels["alertname"], labels["severity"] = name, severity[name]
	for k, v := range labels {
		if v == "" {
			delete(labels, k) // Alertmanager treats an empty label as absent
		}
	}
	ann := map[string]string{"summary": summary(name, e), "description": e.Message, "event_id": e.ID}
	for k, v := range map[string]string{"origin": e.Origin, "shift_id": e.ShiftID, "why": e.Why, "actor": e.Actor} {
		if v != "" {
			ann[k] = v
		}
	}
	return Alert{Labels: labels, Annotations: ann, StartsAt: e.At.UTC(), GeneratorURL: e.Link}, firing, true
}

// IsAlert says whether e starts or ends an alert (what the endpoint accepts).
func IsAlert(e event.Event) bool { _, _, ok := For(e); return ok }

func summary(name string, e event.Event) string {
	where := e.Resource
	if e.Zone != "" {
		where = fmt.Sprintf("%s, zone %s", e.Resource, e.Zone)
	}
	switch name {
	case ShiftActive:
		return fmt.Sprintf("%s shift away from zone %s of %s", orDefault(e.Origin, "a"), e.Zone, e.Resource)
	case ApprovalPending:
		return fmt.Sprintf("a shift away from zone %s of %s waits for approval: %s", e.Zone, e.Resource, e.Link)
	case FailStatic:
		return fmt.Sprintf("%s fails static (%s): no shift starts or ends automatically", e.Resource, e.Reason)
	default:
		return fmt.Sprintf("%s of %s keeps failing", e.Action, where)
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// StateStore keeps the active alerts, so a restarted or newly elected
// leader resends them (server/store.DB).
type StateStore interface {
	GetState(ctx context.Context, key string) ([]byte, bool, error)
	PutState(ctx context.Context, key string, value []byte) error
}

// Notifier posts to one Alertmanager.
type Notifier struct {
	URL         string        // the Alertmanager's base URL, e.g. http://127.0.0.1:9093
	ResendEvery time.Duration // default DefaultResendEvery
	Client      *http.Client  // nil: http.DefaultClient
	Now         func() time.Time
	// State and StateKey keep the active alerts; nil State: in memory only.
	State    StateStore
	StateKey string
	// Holds, when set, is asked at each resend whether an active alert's
	// condition still holds; one that no longer does (its end was never
	// told: a decision lost with a restart) is resolved instead of resent.
	Holds func(labels map[string]string) bool

	mu     sync.Mutex
	memory map[string]Alert
}

// DefaultResendEvery is Prometheus' resend delay.
const DefaultResendEvery = time.Minute

var _ notify.Notifier = (*Notifier)(nil)

func (n *Notifier) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

func (n *Notifier) every() time.Duration {
	if n.ResendEvery > 0 {
		return n.ResendEvery
	}
	return DefaultResendEvery
}

// ResendInterval is how often Resend should run.
func (n *Notifier) ResendInterval() time.Duration { return n.every() }

// Notify implements notify.Notifier: it posts the alert e starts or ends.
func (n *Notifier) Notify(ctx context.Context, e event.Event) error {
	a, firing, ok := For(e)
	if !ok {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	active, err := n.load(ctx)
	if err != nil {
		return err
	}
	k := a.key()
	if firing {
		a.EndsAt = n.now().Add(4 * n.every())
	} else {
		if prev, ok := active[k]; ok {
			a.StartsAt = prev.StartsAt
			a.Annotations = prev.Annotations
			a.Annotations["resolved_by_event_id"] = e.ID
		}
		a.EndsAt = e.At.UTC()
		if !a.EndsAt.After(a.StartsAt) {
			a.EndsAt = a.StartsAt.Add(time.Millisecond)
		}
	}
	if err := n.post(ctx, []Alert{a}); err != nil {
		return err
	}
	if firing {
		active[k] = a
	} else {
		delete(active, k)
	}
	return n.save(ctx, active)
}

// Resend posts every active alert again with endsAt moved ahead.
func (n *Notifier) Resend(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	active, err := n.load(ctx)
	if err != nil || len(active) == 0 {
		return err
	}
	out := make([]Alert, 0, len(active))
	now := n.now()
	var gone []string
	for k, a := range active {
		if n.Holds != nil && !n.Holds(a.Labels) {
			a.EndsAt = now
			gone = append(gone, k)
		} else {
			a.EndsAt = now.Add(4 * n.every())
		}
		out = append(out, a)
	}
	if err := n.post(ctx, out); err != nil {
		return err
	}
	if len(gone) == 0 {
		return nil
	}
	for _, k := range gone {
		delete(active, k)
	}
	return n.save(ctx, active)
}

func (n *Notifier) load(ctx context.Context) (map[string]Alert, error) {
	if n.State == nil {
		if n.memory == nil {
			n.memory = map[string]Alert{}
		}
		return n.memory, nil
	}
	data, ok, err := n.State.GetState(ctx, n.StateKey)
	if err != nil {
		return nil, fmt.Errorf("alertmanager: read active alerts: %w", err)
	}
	var list []Alert
	if ok && len(data) > 0 {
		if err := json.Unmarshal(data, &list); err != nil {
			return nil, fmt.Errorf("alertmanager: read active alerts: %w", err)
		}
	}
	m := make(map[string]Alert, len(list))
	for _, a := range list {
		m[a.key()] = a
	}
	return m, nil
}

func (n *Notifier) save(ctx context.Context, active map[string]Alert) error {
	if n.State == nil {
		n.memory = active
		return nil
	}
	list := make([]Alert, 0, len(active))
	for _, a := range active {
		list = append(list, a)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].key() < list[j].key() })
	data, err := json.Marshal(list)
	if err != nil {
		return err
	}
	if err := n.State.PutState(ctx, n.StateKey, data); err != nil {
		return fmt.Errorf("alertmanager: save active alerts: %w", err)
	}
	return nil
}

func (n *Notifier) post(ctx context.Context, alerts []Alert) error {
	body, err := json.Marshal(alerts)
	if err != nil {
		return notify.Permanent(fmt.Errorf("alertmanager: encode: %w", err))
	}
	url := strings.TrimRight(n.URL, "/") + "/api/v2/alerts"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return notify.Permanent(fmt.Errorf("alertmanager: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	c := n.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("alertmanager: post to %s: %w", url, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return notify.StatusError("alertmanager", resp.StatusCode, msg)
}
