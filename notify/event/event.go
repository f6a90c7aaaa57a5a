// Package event is the one model of what grayzone decides or does: a
// detection, a decision awaiting approval, a shift starting, extended or
// ending, a zone excluded or included, fail static entered or left, an
// actuator refusing or failing, leadership gained or lost. serve derives one Event
// from each audit entry it writes, in the same transaction, so the audit
// log, the dashboard and every notifier say the same things.
package event

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// Version is the schema version of Event; it changes only when a field
// changes meaning or goes away (adding one does not).
const Version = 1

// Kind says what happened.
type Kind string

// The kinds. The CloudEvents type of a kind is TypePrefix + kind.
const (
	Detection         Kind = "detection"          // isolated zonal impact detected (Why says why)
	ApprovalPending   Kind = "approval.pending"   // a shift waits for an operator (Link approves it)
	ApprovalGiven     Kind = "approval.approved"  // an operator approved it
	ShiftStarted      Kind = "shift.started"      // Origin: auto, manual, practice, external
	ShiftExtended     Kind = "shift.extended"     // its expiry or comment changed
	ShiftEnded        Kind = "shift.ended"        // cancelled, recovered, expired or ended outside
	ZoneExcluded      Kind = "zone.excluded"      // the control plane took the zone out
	ZoneIncluded      Kind = "zone.included"      // and put it back
	FailStaticEntered Kind = "failstatic.entered" // the detector doubts its view: nothing moves
	FailStaticLeft    Kind = "failstatic.left"
	ActuatorFailed    Kind = "actuator.failed"    // an action failed and is being retried
	ActuatorRecovered Kind = "actuator.recovered" // the failing action succeeded
	ActuatorRefused   Kind = "actuator.refused"   // the system refused the action (e.g. ARC)
	LeadershipGained  Kind = "leadership.gained"  // this replica leads and acts
	// LeadershipLost: an earlier leadership is over. Told by the replica
	// that took over, in the same write as its own gain: a deposed leader's
	// writes are fenced off, so it cannot tell it itself.
	LeadershipLost Kind = "leadership.lost"
)

// Kinds lists every kind, for configuration checks and documentation.
var Kinds = []Kind{Detection, ApprovalPending, ApprovalGiven, ShiftStarted, ShiftExtended, ShiftEnded,
	ZoneExcluded, ZoneIncluded, FailStaticEntered, FailStaticLeft, ActuatorFailed, ActuatorRecovered,
	ActuatorRefused, LeadershipGained, LeadershipLost}

// TypePrefix makes a kind a CloudEvents type (reverse-DNS, versioned).
const TypePrefix = "io.grayzone.v1."

// Event is one thing grayzone decided or did. ID is the idempotency key:
// it never changes between deliveries, so receivers dedupe on it.
type Event struct {
	ID       string    `json:"id"`
	Version  int       `json:"version"`
	Kind     Kind      `json:"kind"`
	At       time.Time `json:"at"`
	Resource string    `json:"resource,omitempty"`
	Zone     string    `json:"zone,omitempty"`
	// Origin of a shift: auto, manual, practice or external.
	Origin     string `json:"origin,omitempty"`
	ShiftID    string `json:"shift_id,omitempty"`
	DecisionID string `json:"decision_id,omitempty"`
	Action     string `json:"action,omitempty"` // the actuator action (shift_away, exclude, ...)
	Reason     string `json:"reason,omitempty"` // fail static's reason
	Actor      string `json:"actor,omitempty"`
	Why        string `json:"why,omitempty"` // the detector's reasons
	Message    string `json:"message"`
	// Link is where a person acts on it: the dashboard's approval of the
	// decision, or the dashboard.
	Link string `json:"link,omitempty"`
	// AuditSeq is the audit log entry it came with (0 until written).
	AuditSeq int64 `json:"audit_seq,omitempty"`
}

// NewID returns a fresh event ID: "gze-" and 128 random bits in hex.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "gze-" + hex.EncodeToString(b[:])
}

// Type is the event's CloudEvents type.
func (e Event) Type() string { return TypePrefix + string(e.Kind) }
