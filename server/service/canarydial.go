package service

import (
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/grayzone/grayzone/actuator/frontdoor"
	"github.com/grayzone/grayzone/telemetry/canary"
)

// ownFrontDoors is serve's one canary transport. A canary whose URL is one
// of serve's own embedded front doors' endpoints calls it in memory
// (frontdoor.Proxy.InProcessTransport): the call takes the front door's
// real path to a target, but no socket pair, which over loopback cost two
// descriptors in this one process per canary connection, and no
// http.Transport's reader and writer goroutines per connection. Any other
// URL is called over the network, through the canaries' shared, per-host
// bounded transport.
type ownFrontDoors struct {
	mu     sync.RWMutex
	byAddr map[string]http.RoundTripper // the front doors' endpoints, by host:port
}

func newOwnFrontDoors() *ownFrontDoors {
	return &ownFrontDoors{byAddr: map[string]http.RoundTripper{}}
}

// canaryIdle is how many in-memory connections a canary keeps to one of
// serve's endpoints: spread calls come one at a time.
const canaryIdle = 2

// add registers a started front door's endpoints.
func (o *ownFrontDoors) add(p *frontdoor.Proxy, zones []string) {
	urls := []string{p.RegionalURL()}
	for _, z := range zones {
		urls = append(urls, p.ZonalURL(z))
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, u := range urls {
		host, ok := strings.CutPrefix(u, "http://") // the endpoints' base URLs
		if !ok {
			continue
		}
		if tr, err := p.InProcessTransport(host, canaryIdle); err == nil { // not without the fast path
			o.byAddr[host] = tr
		}
	}
}

// RoundTrip implements http.RoundTripper.
func (o *ownFrontDoors) RoundTrip(req *http.Request) (*http.Response, error) {
	o.mu.RLock()
	tr := o.byAddr[req.URL.Host]
	o.mu.RUnlock()
	if tr == nil || req.URL.Scheme != "http" {
		return canary.SharedTransport().RoundTrip(req)
	}
	resp, err := tr.RoundTrip(req)
	if errors.Is(err, frontdoor.ErrNotInProcess) { // closed meanwhile: whatever listens there now
		return canary.SharedTransport().RoundTrip(req)
	}
	return resp, err
}
