package emf

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/grayzone/grayzone/internal/loglimit"
	"github.com/grayzone/grayzone/telemetry/listener"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/grayzone/grayzone/telemetry/ingest"
)

// Config configures a Source.
type Config struct {
	Name     string // source name in the counters (default emf)
	File     string // a log to tail (from its end, following rotation)
	Listen   string // an address taking POSTed lines
	Interval time.Duration
	Names    Names
	Sink     ingest.Sink
	Now      func() time.Time
	Log      *slog.Logger
	// Security and Limits of the listener (Listen): a bearer token with
	// the ingest scope on every POST (or Insecure), TLS, and bounds.
	Security listener.Security
	Limits   listener.Limits
}

// DefaultMaxBody bounds one POST (after decompression) unless the limits
// say otherwise; maxLine bounds one line of the file.
const (
	DefaultMaxBody = 8 << 20
	maxLine        = 1 << 20
)

// Source tails a file and/or takes POSTs, aggregates, and offers at each interval.
type Source struct {
	cfg     Config
	ln      net.Listener
	guard   *listener.Guard   // nil without Listen
	refused *loglimit.Limiter // lines the input causes: rate-limited

	mu  sync.Mutex
	agg Aggregator

	// file state, owned by Poll's caller
	f       *os.File
	ino     uint64
	off     int64
	partial []byte
}

// New checks the config and binds the listener, if any.
func New(cfg Config) (*Source, error) {
	if cfg.Name == "" {
		cfg.Name = "emf"
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Names.Zone == "" {
		cfg.Names = WorkshopNames()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.File == "" && cfg.Listen == "" {
		return nil, errors.New("emf: no file and no listen address")
	}
	s := &Source{cfg: cfg, agg: Aggregator{Interval: cfg.Interval}, refused: loglimit.New(cfg.Log)}
	if cfg.Listen != "" {
		g, err := listener.New("emf source "+cfg.Name, cfg.Security, cfg.Limits, DefaultMaxBody, cfg.Log)
		if err != nil {
			return nil, err
		}
		ln, err := g.Listen(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("emf: %w", err)
		}
		s.ln, s.guard, s.refused = ln, g, g.Refused()
	}
	if cfg.File != "" {
		s.open(true)
	}
	return s, nil
}

// Addr is the bound HTTP address ("" without one).
func (s *Source) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Run polls the file and flushes every interval until ctx ends.
func (s *Source) Run(ctx context.Context) error {
	if s.ln != nil {
		srv, serve := s.guard.ServeHTTP(s.ln, http.HandlerFunc(s.serveHTTP))
		go func() { _ = serve() }()
		defer srv.Close()
	}
	poll := time.NewTicker(min(s.cfg.Interval, 250*time.Millisecond))
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Poll()
			s.Flush(time.Time{})
			return nil
		case <-poll.C:
			s.Poll()
			s.Flush(s.cfg.Now())
		}
	}
}

// Flush offers the aggregates of intervals ended by now (zero: all).
func (s *Source) Flush(now time.Time) {
	s.mu.Lock()
	aggs := s.agg.Flush(now)
	s.mu.Unlock()
	if len(aggs) == 0 {
		return
	}
	if now.IsZero() {
		now = s.cfg.Now()
	}
	if err := s.cfg.Sink.Offer(s.cfg.Name, aggs, now); err != nil && !errors.Is(err, ingest.ErrFull) {
		s.refused.Warn(context.Background(), "emf: batch rejected", slog.String("source", s.cfg.Name), slog.Any("err", err))
	}
}

// add parses lines, all or nothing: one bad line, or one dated further
// ahead than ingest.MaxFuture (it would hold an aggregation bucket that
// never flushes), rejects the batch, and so does a batch that would take
// the aggregator past its open-series cap (ingest.ErrCapped).
func (s *Source) add(lines [][]byte) error {
	now := s.cfg.Now()
	parsed := make([]Line, 0, len(lines))
	for i, ln := range lines {
		if len(bytes.TrimSpace(ln)) == 0 {
			continue
		}
		l, ok, err := s.cfg.Names.Parse(ln)
		if err == nil && ok && l.At.Sub(now) > ingest.MaxFuture {
			err = fmt.Errorf("_aws.Timestamp: %s is %s in the future (limit %s): %w", l.At.Format(time.RFC3339), l.At.Sub(now).Round(time.Second), ingest.MaxFuture, ingest.ErrOutOfWindow)
		}
		if err != nil {
			err = fmt.Errorf("emf: line %d: %w", i+1, err)
			s.cfg.Sink.Reject(s.cfg.Name, err)
			return err
		}
		if ok {
			parsed = append(parsed, l)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if need, room := s.agg.need(parsed); need > room {
		s.agg.Dropped += uint64(len(parsed))
		err := fmt.Errorf("emf: %d lines need %d new series, the aggregator has room for %d (open series are capped at %d): %w",
			len(parsed), need, room, s.agg.MaxSeries, ingest.ErrCapped)
		s.cfg.Sink.Reject(s.cfg.Name, err)
		return err
	}
	for _, l := range parsed {
		s.agg.Add(l)
	}
	return nil
}

// serveHTTP takes POSTed lines; the guard has checked the token and the
// in-flight cap, and the body is decompressed and bounded.
func (s *Source) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST EMF lines (one JSON object a line)", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		code, msg := s.guard.BodyStatus(err)
		http.Error(w, msg, code)
		return
	}
	switch err := s.add(bytes.Split(body, []byte("\n"))); {
	case errors.Is(err, ingest.ErrCapped):
		w.Header().Set("Retry-After", "1")
		http.Error(w, err.Error(), http.StatusTooManyRequests)
		return
	case err != nil:
		http.Error(w, loglimit.Truncate(err.Error(), 1024), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// open (re)opens the file; atEnd starts from its current end (tail -f).
func (s *Source) open(atEnd bool) {
	f, err := os.Open(s.cfg.File)
	if err != nil {
		return // not there yet: retried at each poll
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return
	}
	s.f, s.ino, s.off, s.partial = f, inode(fi), 0, nil
	if atEnd {
		s.off = fi.Size()
	}
}

// Poll reads the lines appended to the file since the last poll. Each line
// is its own batch: a bad one is rejected and counted, the rest go on. A
// file replaced (rotation) or truncated is read again from its start.
func (s *Source) Poll() {
	if s.cfg.File == "" {
		return
	}
	if s.f == nil {
		s.open(false)
		if s.f == nil {
			return
		}
	}
	if fi, err := os.Stat(s.cfg.File); err == nil && inode(fi) != s.ino {
		s.drainFile() // the rest of the rotated file first
		s.f.Close()
		s.f = nil
		s.open(false)
		if s.f == nil {
			return
		}
	} else if err == nil && fi.Size() < s.off {
		s.off, s.partial = 0, nil // truncated
	}
	s.drainFile()
}

func (s *Source) drainFile() {
	if _, err := s.f.Seek(s.off, io.SeekStart); err != nil {
		return
	}
	r := bufio.NewReaderSize(s.f, 64<<10)
	for {
		chunk, err := r.ReadSlice('\n')
		s.off += int64(len(chunk))
		if errors.Is(err, bufio.ErrBufferFull) {
			s.partial = append(s.partial, chunk...)
			if len(s.partial) > maxLine {
				s.cfg.Sink.Reject(s.cfg.Name, fmt.Errorf("emf: %s: a line over %d bytes", s.cfg.File, maxLine))
				s.partial = s.partial[:0]
				rest, _ := r.ReadBytes('\n') // skip the rest of it
				s.off += int64(len(rest))
			}
			continue
		}
		if err != nil { // EOF: keep the unfinished line for the next poll
			s.partial = append(s.partial, chunk...)
			return
		}
		line := chunk
		if len(s.partial) > 0 {
			line = append(s.partial, chunk...)
			s.partial = nil
		}
		_ = s.add([][]byte{line})
	}
}
