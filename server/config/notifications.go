package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/grayzone/grayzone/internal/yamlfield"
	"github.com/grayzone/grayzone/notify"
	"github.com/grayzone/grayzone/notify/alertmanager"
	"github.com/grayzone/grayzone/notify/event"
)

// Notifications says who hears of grayzone's events (docs/notifications.md).
type Notifications struct {
	// DashboardURL is the dashboard as people reach it: the base of the
	// links in alerts and events (default: http://<listen>/).
	DashboardURL  string
	Alertmanagers []AlertmanagerEndpoint
	Webhooks      []WebhookEndpoint
	Retry         notify.Retry
}

// AlertmanagerEndpoint is one Alertmanager (its v2 API).
type AlertmanagerEndpoint struct {
	Name        string
	URL         string
	ResendEvery time.Duration
}

// WebhookEndpoint is one CloudEvents receiver.
type WebhookEndpoint struct {
	Name   string
	URL    string
	Secret []byte       // HMAC-SHA256 key (from secret_file, or secret)
	Events []event.Kind // nil: all
}

// Enabled reports whether any endpoint is configured.
func (n Notifications) Enabled() bool { return len(n.Alertmanagers)+len(n.Webhooks) > 0 }

var (
	notificationsKeys = []string{"dashboard_url", "alertmanagers", "webhooks", "retry"}
	alertmanagerKeys  = []string{"name", "url", "resend_every"}
	webhookKeys       = []string{"name", "url", "secret_file", "secret", "events"}
	retryKeys         = []string{"initial", "max", "give_up_after"}
)

// MinWebhookSecret is the shortest secret accepted (bytes): 128 bits of hex.
const MinWebhookSecret = 32

func (p *parser) notifications(m *yamlfield.Mapping, c *Config) {
	c.Notifications.Retry = notify.DefaultRetry
	f, ok := m.Get("notifications")
	if !ok {
		return
	}
	nm, ok := p.Mapping(f, notificationsKeys)
	if !ok {
		return
	}
	n := &c.Notifications
	if df, ok := nm.Get("dashboard_url"); ok {
		n.DashboardURL, _ = p.httpURL(df, "https://grayzone.example.com/")
	}
	names := map[string]int{}
	name := func(em *yamlfield.Mapping, it yamlfield.Field, def string) string {
		v := def
		if nf, ok := em.Get("name"); ok {
			if s, ok := p.Str(nf); ok {
				if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\n") {
					p.Errorf(nf, "must be a non-empty word (it keys the endpoint's queued events)")
				}
				v = s
			}
		}
		if l, dup := names[v]; dup {
			p.Errorf(it, "duplicate endpoint name %s (first at line %d)", yamlfield.Quote(v), l)
		}
		names[v] = it.Line
		return v
	}
	if af, ok := nm.Get("alertmanagers"); ok {
		items, _ := p.List(af, "a list of Alertmanagers ({url, name, resend_every})")
		for i, it := range items {
			em, ok := p.Mapping(it, alertmanagerKeys)
			if !ok {
				continue
			}
			a := AlertmanagerEndpoint{ResendEvery: alertmanager.DefaultResendEvery}
			a.Name = name(em, it, fmt.Sprintf("alertmanager-%d", i+1))
			if uf, ok := p.Require(em, "url"); ok {
				a.URL, _ = p.httpURL(uf, "http://127.0.0.1:9093")
			}
			if rf, ok := em.Get("resend_every"); ok {
				a.ResendEvery, _ = p.DurationIn(rf, time.Second, time.Hour)
			}
			n.Alertmanagers = append(n.Alertmanagers, a)
		}
	}
	if wf, ok := nm.Get("webhooks"); ok {
		items, _ := p.List(wf, "a list of webhooks ({url, secret_file, name, events})")
		for i, it := range items {
			em, ok := p.Mapping(it, webhookKeys)
			if !ok {
				continue
			}
			w := WebhookEndpoint{Name: name(em, it, fmt.Sprintf("webhook-%d", i+1))}
			if uf, ok := p.Require(em, "url"); ok {
				w.URL, _ = p.httpURL(uf, "https://hooks.example.com/grayzone")
			}
			w.Secret = p.webhookSecret(em, it)
			if ef, ok := em.Get("events"); ok {
				evs, _ := p.List(ef, "a list of event kinds")
				for _, e := range evs {
					if s, ok := p.Str(e); ok {
						if !slices.Contains(event.Kinds, event.Kind(s)) {
							p.Errorf(e, "unknown event kind %s (kinds: %s)", yamlfield.Quote(s), kindList())
							continue
						}
						w.Events = append(w.Events, event.Kind(s))
					}
				}
			}
			n.Webhooks = append(n.Webhooks, w)
		}
	}
	if rf, ok := nm.Get("retry"); ok {
		if rm, ok := p.Mapping(rf, retryKeys); ok {
			r := &n.Retry
			if v, ok := rm.Get("initial"); ok {
				r.Initial, _ = p.DurationIn(v, 100*time.Millisecond, time.Hour)
			}
			if v, ok := rm.Get("max"); ok {
				r.Max, _ = p.DurationIn(v, 100*time.Millisecond, 24*time.Hour)
			}
			if v, ok := rm.Get("give_up_after"); ok {
				r.GiveUpAfter, _ = p.DurationIn(v, time.Minute, 30*24*time.Hour)
			}
			if r.Max < r.Initial {
				p.Errorf(rf, "max (%s) is below initial (%s)", r.Max, r.Initial)
			}
		}
	}
}

func kindList() string {
	s := make([]string, len(event.Kinds))
	for i, k := range event.Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// webhookSecret reads secret_file (resolved against the config file's
// directory) or secret; one of them is required.
func (p *parser) webhookSecret(em *yamlfield.Mapping, it yamlfield.Field) []byte {
	sf, hasFile := em.Get("secret_file")
	si, hasInline := em.Get("secret")
	var secret string
	switch {
	case hasFile && hasInline:
		p.Errorf(si, "give secret_file or secret, not both")
		return nil
	case hasFile:
		v, ok := p.Str(sf)
		if !ok {
			return nil
		}
		if !filepath.IsAbs(v) {
			v = filepath.Join(filepath.Dir(p.File), v)
		}
		data, err := os.ReadFile(v)
		if err != nil {
			p.Errorf(sf, "%v", err)
			return nil
		}
		secret = strings.TrimSpace(string(data))
		if len(secret) < MinWebhookSecret {
			p.Errorf(sf, "%s holds %d characters; a webhook secret needs at least %d (e.g. openssl rand -hex 32)", v, len(secret), MinWebhookSecret)
		}
	case hasInline:
		v, ok := p.Str(si)
		if !ok {
			return nil
		}
		secret = v
		if len(secret) < MinWebhookSecret {
			p.Errorf(si, "%d characters; a webhook secret needs at least %d (e.g. openssl rand -hex 32)", len(secret), MinWebhookSecret)
		}
	default:
		p.Errorf(it, "missing secret_file (the HMAC key receivers verify signatures with)")
	}
	return []byte(secret)
}

// httpURL reads an http(s) URL with a host.
func (p *parser) httpURL(f yamlfield.Field, example string) (string, bool) {
	v, ok := p.Str(f)
	if !ok {
		return "", false
	}
	if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.Errorf(f, "%s is not an http(s) URL (e.g. %s)", yamlfield.Quote(v), example)
		return "", false
	}
	return v, true
}
