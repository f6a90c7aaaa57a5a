package otlp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/grayzone/grayzone/telemetry/listener"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grayzone/grayzone/telemetry/ingest"
	"github.com/grayzone/grayzone/telemetry/record"
)

// DefaultMaxBody bounds one OTLP request (after decompression) unless the
// limits say otherwise.
const DefaultMaxBody = 16 << 20

// Config configures a Receiver.
type Config struct {
	Name           string // source name in the counters (default otlp)
	HTTP, GRPC     string // listen addresses; empty: that transport is off
	Attributes     Attributes
	DurationMetric string
	RequestsMetric string
	Sink           ingest.Sink
	Now            func() time.Time
	Log            *slog.Logger
	// Security: a bearer token with the ingest scope on every request
	// (or Insecure), and TLS; Limits bound what clients can hold.
	Security listener.Security
	Limits   listener.Limits
}

// Receiver takes OTLP metrics over HTTP and gRPC.
type Receiver struct {
	cfg  Config
	mu   sync.Mutex // serialises conversions: the cumulative state is shared
	conv Converter

	guard          *listener.Guard
	httpLn, grpcLn net.Listener
}

// New binds the configured listeners (so an address in use fails at start,
// and port 0 gets its port before Run).
func New(cfg Config) (*Receiver, error) {
	if cfg.Name == "" {
		cfg.Name = "otlp"
	}
	if len(cfg.Attributes.Zone) == 0 {
		cfg.Attributes = DefaultAttributes()
	}
	if cfg.DurationMetric == "" {
		cfg.DurationMetric = DefaultDurationMetric
	}
	if cfg.RequestsMetric == "" {
		cfg.RequestsMetric = DefaultRequestsMetric
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.HTTP == "" && cfg.GRPC == "" {
		return nil, errors.New("otlp: no listen address (http or grpc)")
	}
	guard, err := listener.New("otlp source "+cfg.Name, cfg.Security, cfg.Limits, DefaultMaxBody, cfg.Log)
	if err != nil {
		return nil, err
	}
	r := &Receiver{cfg: cfg, guard: guard, conv: Converter{Attributes: cfg.Attributes, DurationMetric: cfg.DurationMetric, RequestsMetric: cfg.RequestsMetric}}
	r.conv.Tracker.Since = cfg.Now()
	if cfg.HTTP != "" {
		if r.httpLn, err = guard.Listen(cfg.HTTP); err != nil {
			return nil, fmt.Errorf("otlp: http: %w", err)
		}
	}
	if cfg.GRPC != "" {
		if r.grpcLn, err = guard.Listen(cfg.GRPC); err != nil {
			if r.httpLn != nil {
				r.httpLn.Close()
			}
			return nil, fmt.Errorf("otlp: grpc: %w", err)
		}
	}
	return r, nil
}

// HTTPAddr and GRPCAddr are the bound addresses ("" when off).
func (r *Receiver) HTTPAddr() string { return addr(r.httpLn) }

// GRPCAddr is the bound gRPC address.
func (r *Receiver) GRPCAddr() string { return addr(r.grpcLn) }

func addr(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}

// Run serves until ctx ends.
func (r *Receiver) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	if r.httpLn != nil {
		mux := http.NewServeMux()
		mux.HandleFunc("POST /v1/metrics", r.serveHTTP)
		srv, serve := r.guard.ServeHTTP(r.httpLn, mux)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("otlp: http: %w", err)
			}
		}()
		defer srv.Close()
	}
	if r.grpcLn != nil {
		gs := grpc.NewServer(r.guard.GRPCOptions()...)
		pmetricotlp.RegisterGRPCServer(gs, &grpcServer{r: r})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := gs.Serve(r.grpcLn); err != nil {
				errc <- fmt.Errorf("otlp: grpc: %w", err)
			}
		}()
		defer gs.Stop()
	}
	r.cfg.Log.Info("otlp receiver listening", "source", r.cfg.Name, "http", r.HTTPAddr(), "grpc", r.GRPCAddr())
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// export converts and offers one request: an OTLP protobuf body, or
// (body nil) metrics pdata decoded.
func (r *Receiver) export(body []byte, md pmetric.Metrics) error {
	now := r.cfg.Now()
	// The lock is held through Offer: the aggregates are the converter's
	// scratch space, which the next request reuses.
	r.mu.Lock()
	defer r.mu.Unlock()
	var aggs []record.Aggregate
	var err error
	if body != nil {
		aggs, err = r.conv.Convert(body, now)
	} else {
		aggs, err = r.conv.ConvertMetrics(md, now)
	}
	if err != nil {
		err = fmt.Errorf("otlp: %w", err)
		r.cfg.Sink.Reject(r.cfg.Name, err)
		return fmt.Errorf("%w: %w", err, ingest.ErrRejected)
	}
	if len(aggs) == 0 {
		return nil
	}
	return r.cfg.Sink.Offer(r.cfg.Name, aggs, now)
}

// serveHTTP takes one export; the guard has checked the token and the
// in-flight cap, and its body is decompressed and bounded.
func (r *Receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	maxBody := r.guard.Limits().MaxBodyBytes
	buf := bodies.Get().(*bytes.Buffer)
	defer putBody(buf)
	buf.Reset()
	if n := req.ContentLength; n > 0 && n <= maxBody && req.Header.Get("Content-Encoding") == "" {
		buf.Grow(int(n) + bytes.MinRead) // one read to the end, no regrowing
	}
	_, err := buf.ReadFrom(req.Body)
	data := buf.Bytes()
	if err != nil {
		code, msg := r.guard.BodyStatus(err)
		r.httpError(w, req, code, errors.New(msg))
		return
	}
	json := req.Header.Get("Content-Type") == "application/json"
	var md pmetric.Metrics
	if json {
		ex := pmetricotlp.NewExportRequest()
		if err := ex.UnmarshalJSON(data); err != nil {
			err = fmt.Errorf("otlp: cannot decode the request: %w", err)
			r.cfg.Sink.Reject(r.cfg.Name, err)
			r.httpError(w, req, http.StatusBadRequest, err)
			return
		}
		md, data = ex.Metrics(), nil
	} else if data == nil {
		data = []byte{} // an empty export: protobuf's empty message
	}
	switch err := r.export(data, md); {
	case errors.Is(err, ingest.ErrCapped):
		w.Header().Set("Retry-After", "60")
		r.httpError(w, req, http.StatusTooManyRequests, err)
		return
	case errors.Is(err, ingest.ErrRejected):
		r.httpError(w, req, http.StatusBadRequest, err)
		return
	case errors.Is(err, ingest.ErrFull):
		w.Header().Set("Retry-After", "1")
		r.httpError(w, req, http.StatusServiceUnavailable, err)
		return
	case err != nil:
		r.httpError(w, req, http.StatusInternalServerError, err)
		return
	}
	resp := pmetricotlp.NewExportResponse()
	var out []byte
	if json {
		out, _ = resp.MarshalJSON()
		w.Header().Set("Content-Type", "application/json")
	} else {
		out, _ = resp.MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// bodies are request body buffers, reused: the converter keeps no
// reference to a body (the names it keeps are copies), so a buffer is free
// again once its request is converted.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBody(b *bytes.Buffer) {
	if b.Cap() <= DefaultMaxBody+bytes.MinRead {
		bodies.Put(b)
	}
}

// httpError answers with the OTLP error body, a google.rpc.Status.
func (r *Receiver) httpError(w http.ResponseWriter, req *http.Request, code int, err error) {
	st := status.New(grpcCode(code), err.Error()).Proto()
	if req.Header.Get("Content-Type") == "application/json" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, "{\"code\":%d,\"message\":%q}\n", st.Code, st.Message)
		return
	}
	b, _ := marshalStatus(st)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func grpcCode(httpCode int) codes.Code {
	switch httpCode {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return codes.ResourceExhausted
	}
	return codes.Internal
}

type grpcServer struct {
	pmetricotlp.UnimplementedGRPCServer
	r *Receiver
}

func (g *grpcServer) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	switch err := g.r.export(nil, req.Metrics()); {
	case errors.Is(err, ingest.ErrCapped):
		return pmetricotlp.NewExportResponse(), status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, ingest.ErrRejected):
		return pmetricotlp.NewExportResponse(), status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ingest.ErrFull):
		return pmetricotlp.NewExportResponse(), status.Error(codes.Unavailable, err.Error())
	case err != nil:
		return pmetricotlp.NewExportResponse(), status.Error(codes.Internal, err.Error())
	}
	return pmetricotlp.NewExportResponse(), nil
}

func marshalStatus(st *spb.Status) ([]byte, error) { return proto.Marshal(st) }
