package detect

import "slices"

// Reason says why an alarm is in its state. The detectors set one per alarm
// on every tick (four times a simulated second), and it is read rarely — by
// `status`, the alarms API, a test — so it keeps what its text is made of and
// formats the text only when read (String). Formatting every reason on every
// tick was two fifths of an idle tick in a CPU profile of a simulated day; the
// text read is the same as before.
type Reason struct {
	text string
	form reasonForm // reasonText: text is the reason
	num  [6]float64
	strs []string
	flag bool
}

// reasonForm names the function that writes a reason's text from its
// numbers (a name, not a func value, so that equal reasons compare equal).
type reasonForm uint8

const (
	reasonText reasonForm = iota
	reasonRegional
	reasonImpact
	reasonOutlier
	reasonInstances
	reasonRecovery
)

var reasonFormats = [...]func(r *Reason) string{
	reasonRegional:  regionalReason,
	reasonImpact:    impactReason,
	reasonOutlier:   outlierReason,
	reasonInstances: instancesReason,
	reasonRecovery:  recoveryReason,
}

// Because is a reason that is a fixed text.
func Because(text string) Reason { return Reason{text: text} }

// String is the reason's text.
func (r Reason) String() string {
	if r.form == reasonText {
		return r.text
	}
	return reasonFormats[r.form](&r)
}

// MarshalText writes the reason as its text (JSON, logs).
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// equalText reports whether r and o are the same reason but for their
// numbers (the same text when the numbers are the same too).
func (r *Reason) equalText(o *Reason) bool {
	return r.text == o.text && r.form == o.form && r.flag == o.flag && slices.Equal(r.strs, o.strs)
}
