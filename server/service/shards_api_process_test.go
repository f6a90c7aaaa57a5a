package service_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/engine/shift"
	"github.com/grayzone/grayzone/server/api"
)

// TestShardedReplicasApproveAndCancelThroughAnyReplica: two sharded replicas
// with autoshift waiting for approval. A fault in a resource led by one
// (lead) makes a decision every replica lists; approving it through the
// other as the dashboard does (its fetch carries Origin) is forwarded to
// lead, which answers, and the shift starts once; a CLI's approval gets 307
// to lead; an unknown decision is 404. The shift, then its cancel through
// the other replica (as the dashboard does), show on the other replica, which
// reads only the shifts that changed.
func TestShardedReplicasApproveAndCancelThroughAnyReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two grayzone serve processes on PostgreSQL")
	}
	t.Parallel()
	const n, token = 4, "test-token-0123456789abcdef"
	all := startShardedReplicas(t, n, failoverLease, true, "a", "b")
	var by map[*server][]string
	eventually(t, 60*time.Second, "two replicas leading half the resources each", func() bool {
		var ok bool
		by, ok = split(t, n, all...)
		return ok && len(by[all[0]]) == n/2 && len(by[all[1]]) == n/2
	})
	lead, other := all[0], all[1]
	target, ownOther := by[lead][0], by[other][0]
	ctx := context.Background()
	c := api.NewClient(other.url(), token) // follows redirects, as the CLI does
	zones := []string{"z1", "z2", "z3"}

	// The fault: lead decides, and waits; the other replica lists the decision.
	var d api.Decision
	eventually(t, 60*time.Second, "a pending decision about "+target+" listed by the replica that does not lead it", func() bool {
		_ = observeResource(c, target, zones, "z1")
		ds, err := api.NewClient(other.url(), "").Decisions(ctx)
		for _, x := range ds {
			if x.Resource == target && x.Status == "pending" {
				d = x
			}
		}
		return err == nil && d.ID != ""
	})
	if !strings.Contains(d.ID, target) {
		t.Errorf("decision id %q does not name its resource %s", d.ID, target)
	}

	post := func(s *server, path string, browser bool) (int, http.Header, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, s.url()+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if browser {
			req.Header.Set("Origin", s.url()) // the dashboard's fetch, same origin as the page
		}
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, body
	}
	approve := "/v1/decisions/" + d.ID + "/approve"
	// A CLI (no Origin) is redirected to lead, and nothing changes.
	if code, h, _ := post(other, approve, false); code != http.StatusTemporaryRedirect || h.Get("Location") != lead.url()+approve {
		t.Fatalf("CLI approval through the other replica: %d Location %q, want 307 to %s", code, h.Get("Location"), lead.url()+approve)
	}
	// An unknown decision: 404, whichever replica is asked, whoever leads
	// the resource it names.
	for _, id := range []string{"nope", "gzd-" + target + ".z1-1", "gzd-" + ownOther + ".z1-1", "gzd-svc-999.z1-1"} {
		if code, _, body := post(other, "/v1/decisions/"+id+"/approve", true); code != http.StatusNotFound {
			t.Errorf("approving unknown decision %s: %d %s, want 404", id, code, body)
		}
	}
	// The dashboard's approval through the other replica: forwarded, answered by lead.
	code, h, body := post(other, approve, true)
	var got api.Decision
	_ = json.Unmarshal(body, &got)
	if code != http.StatusOK || got.Status != "approved" || got.ID != d.ID {
		t.Fatalf("the dashboard's approval through the other replica: %d %s, want 200 approved", code, body)
	}
	if h.Get("Location") != "" {
		t.Errorf("a forwarded approval carries Location %q", h.Get("Location"))
	}
	// Approved once: again, through the API client (it follows the 307), is a conflict.
	if _, err := c.Approve(ctx, d.ID); err == nil || !strings.Contains(err.Error(), "not pending") {
		t.Errorf("a second approval: %v, want a conflict", err)
	}

	// The shift starts, once, and the other replica shows it.
	var sh shift.Shift
	eventually(t, 60*time.Second, "the approved shift of "+target+" on the other replica", func() bool {
		_ = observeResource(c, target, zones, "z1")
		list, err := api.NewClient(other.url(), "").Shifts(ctx, shift.ListFilter{Resource: target, Status: shift.Active})
		if err == nil && len(list) == 1 {
			sh = list[0]
		}
		return sh.ID != ""
	})
	for _, s := range all {
		list, err := api.NewClient(s.url(), "").Shifts(ctx, shift.ListFilter{})
		if err != nil || len(list) != 1 || list[0].ID != sh.ID || list[0].AwayFrom != "z1" {
			t.Fatalf("shifts on %s: %+v %v, want only %s away from z1", s.addr, list, err, sh.ID)
		}
	}

	// The dashboard's cancel through the other replica: forwarded too.
	if code, _, body := post(other, "/v1/shifts/"+sh.ID+"/cancel", true); code != http.StatusOK {
		t.Fatalf("the dashboard's cancel through the other replica: %d %s", code, body)
	}
	eventually(t, 30*time.Second, "the cancel on the other replica", func() bool {
		s, err := api.NewClient(other.url(), "").Shift(ctx, sh.ID)
		return err == nil && s.Status == shift.Canceled
	})
}
