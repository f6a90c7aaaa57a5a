// Package dashboard is grayzone's web page: a live view of every resource
// served beside the API by grayzone serve and grayzone lab (Handlers), and
// the self-contained HTML page of a run report, a lab run's or a replay's (WriteReport).
//
// Everything the browser needs is embedded: the page, its script and styles
// and a pinned uPlot (assets/vendor, refreshed by vendor.sh). Nothing is
// fetched from elsewhere, so the page works on an isolated network.
package dashboard

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"github.com/grayzone/grayzone/internal/bearer"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/grayzone/grayzone/server/api"
	"github.com/grayzone/grayzone/server/config"
)

//go:embed assets
var assets embed.FS

// Options configure Handlers.
type Options struct {
	// OpenReads mirrors the API's: when false, GET /v1/events needs a bearer
	// token like every API read (the page then streams with fetch, since
	// EventSource cannot send an Authorization header).
	OpenReads bool
	// Tokens returns the accepted bearer tokens (as api.Options.Tokens).
	Tokens func() []config.Token
	// ReadOnly, when set, says why nothing can be changed from this page
	// (the lab's runbook owns its shifts); the controls stay disabled.
	ReadOnly string
	// Interval is how often events are pushed (default 1s).
	Interval time.Duration
	// MaxClients bounds the concurrent event streams (default 64); more are
	// refused with 503 so that a reconnect storm cannot exhaust the server.
	MaxClients int
	// Log receives warnings; nil discards.
	Log *slog.Logger
}

// Handlers returns the dashboard's handlers keyed by ServeMux pattern, to be
// mounted beside the API (which owns "/"): the page, its assets, and the
// server-sent event stream it reads.
func Handlers(b api.Backend, opts Options) map[string]http.Handler {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = 64
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	st := newStatic()
	h := newHub(b, opts)
	return map[string]http.Handler{
		"GET /{$}":       http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { st.index(w, r, opts) }),
		"GET /assets/":   http.StripPrefix("/assets/", st),
		"GET /v1/events": h,
	}
}

// static serves the embedded assets with strong ETags, so a browser
// revalidates cheaply and never runs a stale script after an upgrade.
type static struct {
	files map[string]asset
	page  *template.Template
}

type asset struct {
	data  []byte
	etag  string
	ctype string
}

func newStatic() *static {
	s := &static{files: map[string]asset{}}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	_ = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		s.files[p] = asset{data: data, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: ct}
		return nil
	})
	s.page = template.Must(template.New("index.html").Parse(string(s.files["index.html"].data)))
	return s
}

func (s *static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, ok := s.files[r.URL.Path]
	if !ok || r.URL.Path == "index.html" || strings.HasSuffix(r.URL.Path, ".tmpl") {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.data))
}

// csp allows only this origin: the page has no inline script and fetches
// nothing from elsewhere. Inline styles are uPlot's.
const csp = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (s *static) index(w http.ResponseWriter, r *http.Request, opts Options) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	var buf bytes.Buffer
	if err := s.page.Execute(&buf, struct{ ReadOnly string }{opts.ReadOnly}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(buf.Bytes())
}

// authorized checks an "Authorization: Bearer" header as the API does
// (the read scope: the dashboard's event stream is a read).
func authorized(r *http.Request, tokens func() []config.Token) bool {
	_, ok := api.Authenticate(r, tokens, bearer.Read)
	return ok
}
