// Package alarm reproduces the semantics of an Amazon CloudWatch metric alarm:
// M out of N datapoints, the four ways of treating missing data, the
// evaluation range that reaches back past N periods when datapoints are
// missing, and a one-line state reason in CloudWatch's style.
//
// The package is pure: it never reads a clock. The caller computes each
// period's statistic, records it with Put, and asks for the state at a given
// time with Evaluate.
package alarm

import (
	"fmt"
	"math"
	"time"
)

// State is an alarm state, spelled as CloudWatch spells it.
type State string

const (
	OK               State = "OK"
	Alarm            State = "ALARM"
	InsufficientData State = "INSUFFICIENT_DATA"
)

// ParseState is the inverse of the State constants.
func ParseState(s string) (State, error) {
	switch st := State(s); st {
	case OK, Alarm, InsufficientData:
		return st, nil
	}
	return "", fmt.Errorf("unknown alarm state %q (want OK, ALARM or INSUFFICIENT_DATA)", s)
}

// Comparison is how a datapoint is compared with the threshold. The zero
// value is invalid, so a forgotten field fails Validate instead of silently
// meaning "greater than".
type Comparison int

const (
	GreaterThanThreshold Comparison = iota + 1
	GreaterThanOrEqualToThreshold
	LessThanThreshold
	LessThanOrEqualToThreshold
)

var comparisonNames = [...]string{
	GreaterThanThreshold:          "GreaterThanThreshold",
	GreaterThanOrEqualToThreshold: "GreaterThanOrEqualToThreshold",
	LessThanThreshold:             "LessThanThreshold",
	LessThanOrEqualToThreshold:    "LessThanOrEqualToThreshold",
}

// phrases are used in state reasons, as CloudWatch words them.
var comparisonPhrases = [...]string{
	GreaterThanThreshold:          "greater than",
	GreaterThanOrEqualToThreshold: "greater than or equal to",
	LessThanThreshold:             "less than",
	LessThanOrEqualToThreshold:    "less than or equal to",
}

func (c Comparison) valid() bool { return c >= GreaterThanThreshold && c <= LessThanOrEqualToThreshold }

// String returns CloudWatch's ComparisonOperator name.
func (c Comparison) String() string {
	if !c.valid() {
		return fmt.Sprintf("Comparison(%d)", int(c))
	}
	return comparisonNames[c]
}

// MarshalText lets a Comparison appear by name in JSON or YAML configuration.
func (c Comparison) MarshalText() ([]byte, error) {
	if !c.valid() {
		return nil, fmt.Errorf("invalid comparison %d", int(c))
	}
	return []byte(c.String()), nil
}

// UnmarshalText accepts what ParseComparison accepts.
func (c *Comparison) UnmarshalText(b []byte) error {
	v, err := ParseComparison(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// ParseComparison accepts CloudWatch's ComparisonOperator names and, for
// hand-written configuration, the symbols >, >=, < and <=.
func ParseComparison(s string) (Comparison, error) {
	switch s {
	case ">":
		return GreaterThanThreshold, nil
	case ">=":
		return GreaterThanOrEqualToThreshold, nil
	case "<":
		return LessThanThreshold, nil
	case "<=":
		return LessThanOrEqualToThreshold, nil
	}
	for c := GreaterThanThreshold; c <= LessThanOrEqualToThreshold; c++ {
		if comparisonNames[c] == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown comparison %q (want GreaterThanThreshold, GreaterThanOrEqualToThreshold, LessThanThreshold or LessThanOrEqualToThreshold)", s)
}

// Breaches reports whether value is on the alarming side of threshold.
func (c Comparison) Breaches(value, threshold float64) bool {
	switch c {
	case GreaterThanThreshold:
		return value > threshold
	case GreaterThanOrEqualToThreshold:
		return value >= threshold
	case LessThanThreshold:
		return value < threshold
	case LessThanOrEqualToThreshold:
		return value <= threshold
	}
	return false
}

// MissingData is CloudWatch's TreatMissingData. The empty string means
// Missing, CloudWatch's default.
type MissingData string

const (
	Missing      MissingData = "missing"
	Ignore       MissingData = "ignore"
	Breaching    MissingData = "breaching"
	NotBreaching MissingData = "notBreaching"
)

// ParseMissingData accepts CloudWatch's TreatMissingData values; "" is Missing.
func ParseMissingData(s string) (MissingData, error) {
	switch m := MissingData(s); m {
	case "":
		return Missing, nil
	case Missing, Ignore, Breaching, NotBreaching:
		return m, nil
	}
	return "", fmt.Errorf("unknown treat-missing-data %q (want missing, ignore, breaching or notBreaching)", s)
}

// Config is a metric alarm's definition, as in PutMetricAlarm.
type Config struct {
	Name   string
	Period time.Duration
	// EvaluationPeriods is N: how many of the most recent periods are evaluated.
	EvaluationPeriods int
	// DatapointsToAlarm is M: how many of the N must breach. 0 means N, as in
	// CloudWatch when the field is omitted.
	DatapointsToAlarm int
	Comparison        Comparison
	Threshold         float64
	TreatMissing      MissingData
}

// maxNameLen is CloudWatch's AlarmName limit.
const maxNameLen = 255

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if c.Name == "" {
		return fmt.Errorf("alarm: Name is empty")
	}
	if len(c.Name) > maxNameLen {
		return fmt.Errorf("alarm %q: Name is %d bytes, longer than CloudWatch's %d", c.Name[:32]+"...", len(c.Name), maxNameLen)
	}
	if c.Period <= 0 {
		return fmt.Errorf("alarm %q: Period %v must be positive", c.Name, c.Period)
	}
	if c.EvaluationPeriods < 1 {
		return fmt.Errorf("alarm %q: EvaluationPeriods %d must be at least 1", c.Name, c.EvaluationPeriods)
	}
	if c.DatapointsToAlarm < 0 || c.DatapointsToAlarm > c.EvaluationPeriods {
		return fmt.Errorf("alarm %q: DatapointsToAlarm %d must be between 1 and EvaluationPeriods (%d), or 0 for EvaluationPeriods", c.Name, c.DatapointsToAlarm, c.EvaluationPeriods)
	}
	if !c.Comparison.valid() {
		return fmt.Errorf("alarm %q: Comparison %d is not one of the four CloudWatch comparison operators", c.Name, int(c.Comparison))
	}
	if math.IsNaN(c.Threshold) || math.IsInf(c.Threshold, 0) {
		return fmt.Errorf("alarm %q: Threshold %v must be finite", c.Name, c.Threshold)
	}
	if _, err := ParseMissingData(string(c.TreatMissing)); err != nil {
		return fmt.Errorf("alarm %q: TreatMissing: %v", c.Name, err)
	}
	return nil
}

// M returns DatapointsToAlarm with CloudWatch's default applied.
func (c Config) M() int {
	if c.DatapointsToAlarm == 0 {
		return c.EvaluationPeriods
	}
	return c.DatapointsToAlarm
}

// EvaluationRange is how many of the most recent periods are retrieved when
// the alarm is evaluated, so that real datapoints from farther back can stand
// in for missing recent ones. CloudWatch does not publish the formula ("it
// depends on the period and the resolution"); every example it documents has
// N=3 and a range of 5, so this package uses N+2.
func (c Config) EvaluationRange() int { return c.EvaluationPeriods + 2 }

func (c Config) normalized() Config {
	c.DatapointsToAlarm = c.M()
	if c.TreatMissing == "" {
		c.TreatMissing = Missing
	}
	return c
}
