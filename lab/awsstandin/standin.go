// Package awsstandin is an in-process stand-in for the three AWS services
// grayzone's AWS actuators call: Route 53 ARC zonal shift (REST-JSON),
// EC2 Auto Scaling (AWS Query, XML answers) and EC2's DescribeSubnets (EC2
// Query, XML answers). It speaks their wire protocols, so the official
// aws-sdk-go-v2 clients talk to it unchanged through BaseEndpoint or
// AWS_ENDPOINT_URL; it verifies the SigV4 signature of every request with the
// SDK's own signer, keeps state, rejects what AWS rejects, and injects faults
// (throttling, 500, slow answers, dropped connections, a service down for a
// while).
//
// It is not AWS: it serves the lab (grayzone lab --frontdoor arc
// --control-plane autoscaling) and the actuators' tests. Only the parts of
// each API that grayzone calls are implemented.
package awsstandin

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/grayzone/grayzone/internal/clock"
)

// Service names, as in SigV4 credential scopes.
const (
	ARC         = "arc-zonal-shift"
	AutoScaling = "autoscaling"
	EC2         = "ec2"
)

// Options configure a Server.
type Options struct {
	// Region the server answers for (default us-east-2).
	Region string
	// Clock drives shift expiry and down windows (default: real).
	Clock clock.Clock
	// AccessKeyID and SecretAccessKey are the one accepted credential
	// (defaults: a fixed test pair, see Credentials).
	AccessKeyID, SecretAccessKey string
	Log                          *slog.Logger
}

// Server is the stand-in. Safe for concurrent use.
type Server struct {
	o   Options
	srv *http.Server
	ln  net.Listener

	mu        sync.Mutex
	resources map[string]*managedResource // by ARN
	shifts    []*zonalShift               // oldest first
	groups    map[string]*group
	subnets   map[string]Subnet
	faults    map[string][]Fault // pending faults per service
	down      map[string]func() bool
	delay     map[string]time.Duration
	denied    map[string]bool // "service:Action" answered with AccessDenied
	calls     []Call
}

// Call is one request the server answered (or refused), for tests.
type Call struct {
	Service, Action string
	Status          int
	Error           string // the error code, if any
	// UserAgent tells callers apart (the SDK puts AWS_SDK_UA_APP_ID in it
	// as app/ID).
	UserAgent string
}

// New returns a server that is not listening yet (see Start).
func New(o Options) *Server {
	if o.Region == "" {
		o.Region = "us-east-2"
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.AccessKeyID == "" {
		o.AccessKeyID, o.SecretAccessKey = "AKIDSTANDIN000000000", "standin/secret/key/not/an/aws/secret/000"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Server{o: o, resources: map[string]*managedResource{}, groups: map[string]*group{}, subnets: map[string]Subnet{},
		faults: map[string][]Fault{}, down: map[string]func() bool{}, delay: map[string]time.Duration{}, denied: map[string]bool{}}
}

// Start listens on addr ("127.0.0.1:0" for any free port) and serves until Close.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("awsstandin: listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// Close stops the server.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Close()
}

// URL is the endpoint of all three services (for BaseEndpoint or AWS_ENDPOINT_URL).
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Region is the region the server answers for.
func (s *Server) Region() string { return s.o.Region }

// Credentials are the static credentials the server accepts.
func (s *Server) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.o.AccessKeyID, s.o.SecretAccessKey, "")
}

// Config is an SDK configuration pointed at the server. The retryer is
// left to the caller (the SDK's default applies).
func (s *Server) Config() aws.Config {
	return aws.Config{Region: s.o.Region, Credentials: s.Credentials(), BaseEndpoint: aws.String(s.URL())}
}

// Calls returns the requests answered so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// ServeHTTP verifies the signature, applies faults and dispatches by
// service (the credential scope's) and action.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sig, authErr := s.verify(r, body)
	svc := sig.service
	if svc == "" {
		svc = guessService(r, body)
	}
	action := actionOf(svc, r, body)
	if authErr != nil {
		s.record(r, svc, action, authErr.status, authErr.code)
		writeError(w, svc, authErr)
		return
	}
	if f, ok := s.takeFault(svc); ok {
		switch f.Kind {
		case Drop:
			s.record(r, svc, action, 0, "dropped")
			hijackClose(w)
			return
		case Throttle:
			e := throttled(svc)
			s.record(r, svc, action, e.status, e.code)
			writeError(w, svc, e)
			return
		case ServerError:
			e := &apiError{status: 500, code: "InternalFailure", msg: "We encountered an internal error. Please try again."}
			if svc == ARC {
				e.code = "InternalServerException"
			}
			s.record(r, svc, action, e.status, e.code)
			writeError(w, svc, e)
			return
		}
	}
	if s.isDown(svc) {
		s.record(r, svc, action, 0, "down")
		hijackClose(w)
		return
	}
	if d := s.delayOf(svc, action); d > 0 {
		select {
		case <-time.After(d): // a slow service: real time, at the I/O edge
		case <-r.Context().Done():
			s.record(r, svc, action, 0, "client gave up")
			return
		}
	}
	s.mu.Lock()
	denied := s.denied[svc+":"+action]
	s.mu.Unlock()
	if denied {
		e := &apiError{status: 403, code: "AccessDenied", msg: fmt.Sprintf("User: arn:aws:iam::123456789012:user/standin is not authorized to perform: %s:%s", iamPrefix(svc), action)}
		if svc == ARC {
			e.code = "AccessDeniedException"
		}
		if svc == EC2 {
			e.code = "UnauthorizedOperation"
		}
		s.record(r, svc, action, e.status, e.code)
		writeError(w, svc, e)
		return
	}
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	switch svc {
	case ARC:
		s.serveARC(rec, r, body)
	case AutoScaling:
		s.serveAutoScaling(rec, r, body)
	case EC2:
		s.serveEC2(rec, r, body)
	default:
		rec.status = 400
		writeError(rec, AutoScaling, &apiError{status: 400, code: "UnknownService", msg: "unknown service " + svc})
	}
	s.record(r, svc, action, rec.status, rec.code)
}

func iamPrefix(svc string) string {
	if svc == ARC {
		return "arc-zonal-shift"
	}
	return svc
}

func (s *Server) record(r *http.Request, svc, action string, status int, code string) {
	s.mu.Lock()
	s.calls = append(s.calls, Call{Service: svc, Action: action, Status: status, Error: code, UserAgent: r.UserAgent()})
	s.mu.Unlock()
	s.o.Log.Debug("awsstandin call", "service", svc, "action", action, "status", status, "error", code)
}

// hijackClose cuts the connection without an answer.
func hijackClose(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // RST, like a dead endpoint
			}
			c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	code   string
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Deny makes the server answer AccessDenied to service's action (e.g.
// Deny(ARC, "StartZonalShift")), as an IAM policy without it would.
func (s *Server) Deny(service, action string) {
	s.mu.Lock()
	s.denied[service+":"+action] = true
	s.mu.Unlock()
}

// LoopbackRetryer is the SDK's standard retryer (the same retry decisions:
// throttling, 5xx, broken connections) with millisecond backoff and no retry
// quota, for clients of this server: on loopback, waiting seconds between
// attempts only slows runs and tests down.
func LoopbackRetryer(maxAttempts int) func() aws.Retryer {
	return func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = maxAttempts
			o.RateLimiter = ratelimit.None
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 5 * time.Millisecond, nil })
		})
	}
}
