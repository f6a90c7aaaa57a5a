// Package observation defines what grayzone measures: one request's outcome,
// seen by the server that handled it or by a canary that made it.
package observation

import (
	"fmt"
	"time"
)

// Response headers an instance may set so that callers of a regional endpoint
// (canaries, the lab's load) can tell which zone and instance answered. A
// zonal canary's zone is fixed by the endpoint it calls, not by these.
const (
	HeaderZone     = "X-Grayzone-Zone"
	HeaderInstance = "X-Grayzone-Instance"
)

// Outcome classifies a request the way the workshop does.
type Outcome uint8

const (
	Success Outcome = iota // 2xx/3xx
	Error                  // 4xx: the caller's fault, not counted against availability
	Fault                  // 5xx, a broken connection or no answer in time
)

func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Error:
		return "error"
	case Fault:
		return "fault"
	}
	return fmt.Sprintf("outcome(%d)", o)
}

// ParseOutcome is the inverse of String.
func ParseOutcome(s string) (Outcome, error) {
	switch s {
	case "success":
		return Success, nil
	case "error":
		return Error, nil
	case "fault":
		return Fault, nil
	}
	return 0, fmt.Errorf("unknown outcome %q (want success, error or fault)", s)
}

// FromStatus maps an HTTP status code to an outcome; 0 means no response.
func FromStatus(code int) Outcome {
	switch {
	case code >= 500 || code == 0:
		return Fault
	case code >= 400:
		return Error
	}
	return Success
}

// Source says who saw the request.
type Source uint8

const (
	Server Source = iota // the instance that served it
	Canary               // a synthetic client calling a zonal or the regional endpoint
)

func (s Source) String() string {
	if s == Canary {
		return "canary"
	}
	return "server"
}

// ParseSource is the inverse of String.
func ParseSource(s string) (Source, error) {
	switch s {
	case "server":
		return Server, nil
	case "canary":
		return Canary, nil
	}
	return 0, fmt.Errorf("unknown source %q (want server or canary)", s)
}

// Observation is one request's outcome. Zone is the zone whose endpoint or
// instance handled it; Instance may be empty when a canary got no answer.
type Observation struct {
	At        time.Time // when the request completed
	Source    Source
	Zone      string
	Instance  string
	Operation string
	Outcome   Outcome
	Latency   time.Duration
	// Regional marks canary calls made through the regional endpoint.
	Regional bool
}
