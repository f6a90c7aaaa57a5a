package awsstandin

import (
	"time"
)

// FaultKind is a kind of injected failure.
type FaultKind int

const (
	// Throttle answers as AWS does when a caller exceeds its rate
	// (ThrottlingException / Throttling / RequestLimitExceeded).
	Throttle FaultKind = iota + 1
	// ServerError answers 500 InternalFailure.
	ServerError
	// Drop cuts the connection without an answer.
	Drop
)

// Fault is one injected failure for the next request of a service.
type Fault struct {
	Kind FaultKind
}

// Inject queues n faults of kind for the service's next n requests.
func (s *Server) Inject(service string, kind FaultKind, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[service] = append(s.faults[service], Fault{Kind: kind})
	}
}

func (s *Server) takeFault(service string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[service]
	if len(q) == 0 {
		return Fault{}, false
	}
	s.faults[service] = q[1:]
	return q[0], true
}

// SetDelay makes every answer of the service wait d (0: none).
func (s *Server) SetDelay(service string, d time.Duration) { s.SetActionDelay(service, "", d) }

// SetActionDelay makes the answers to one action of the service wait d
// (0: none), e.g. to hold UpdateAutoScalingGroup in flight. A caller that
// gives up before the answer leaves the state unchanged.
func (s *Server) SetActionDelay(service, action string, d time.Duration) {
	s.mu.Lock()
	s.delay[service+":"+action] = d
	s.mu.Unlock()
}

func (s *Server) delayOf(service, action string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.delay[service+":"], s.delay[service+":"+action])
}

// DownUntil takes the service down until the server's clock reaches t:
// every connection is cut before an answer.
func (s *Server) DownUntil(service string, t time.Time) {
	s.SetDown(service, func() bool { return s.o.Clock.Now().Before(t) })
}

// SetDown takes the service down whenever down returns true (nil: never).
func (s *Server) SetDown(service string, down func() bool) {
	s.mu.Lock()
	if down == nil {
		delete(s.down, service)
	} else {
		s.down[service] = down
	}
	s.mu.Unlock()
}

func (s *Server) isDown(service string) bool {
	s.mu.Lock()
	f := s.down[service]
	s.mu.Unlock()
	return f != nil && f()
}

func throttled(service string) *apiError {
	switch service {
	case ARC:
		return &apiError{status: 429, code: "ThrottlingException", msg: "Rate exceeded"}
	case EC2:
		return &apiError{status: 503, code: "RequestLimitExceeded", msg: "Request limit exceeded."}
	}
	return &apiError{status: 400, code: "Throttling", msg: "Rate exceeded"}
}

// ClearFaults drops every queued fault, delay and down window.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string][]Fault{}
	s.delay = map[string]time.Duration{}
	s.down = map[string]func() bool{}
}
