package dashboard_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/grayzone/grayzone/server/api"
)

// The link an approval alert carries (/?decision=ID) opens the decision in
// the dashboard; with a token, its Approve button approves it.
func TestApprovalLinkInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs grayzone serve and a browser")
	}
	var failing, shifted atomic.Bool
	ctx := browser(t, nil)
	addr := startServiceWith(t, &failing, "enabled: true, approval: true, min_interval: 0s")
	base := "http://" + addr
	client := api.NewClient(base, testToken)
	fctx, stopFeed := context.WithCancel(context.Background())
	defer stopFeed()
	failing.Store(true)
	go feed(fctx, client, &failing, &shifted)
	var d api.Decision
	deadline := time.Now().Add(60 * time.Second)
	for d.ID == "" && time.Now().Before(deadline) {
		ds, _ := client.Decisions(context.Background())
		for _, x := range ds {
			if x.Status == "pending" {
				d = x
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d.ID == "" {
		t.Fatal("no decision awaiting approval")
	}
	tctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(base+"/?decision="+d.ID)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tctx, 20*time.Second, "the decision shown", `!document.getElementById('approval').hidden && document.getElementById('approval-status').textContent === 'pending'`)
	what, err := chromedp.Run(tctx, chromedp.Text(chromedp.CSS(`#approval-what`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(what, d.Zone) || !strings.Contains(what, d.ID) {
		t.Fatalf("approval view says %q; want zone %s and decision %s", what, d.Zone, d.ID)
	}
	if err := chromedp.Do(tctx,
		chromedp.SendKeys(chromedp.CSS(`#token`), testToken),
		chromedp.Click(chromedp.CSS(`#token-save`)),
	); err != nil {
		t.Fatal(err)
	}
	// Saving the token reloads the decision, which renders the Approve
	// button anew: a node found before that is gone by the click (chromedp's
	// "Could not find node with given id"), so wait for an enabled button
	// and click whichever one the page has at that moment.
	waitJS(t, tctx, 20*time.Second, "Approve enabled", `!!document.getElementById('approval-approve') && !document.getElementById('approval-approve').disabled`)
	if _, err := chromedp.Run(tctx, chromedp.Evaluate[bool](`(document.getElementById('approval-approve').click(), true)`)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, tctx, 20*time.Second, "approved", `document.getElementById('approval-status').textContent === 'approved'`)
	ds, err := client.Decisions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ds {
		if x.ID == d.ID && (x.Status != "approved" || x.ApprovedBy == "") {
			t.Fatalf("decision after the click: %+v", x)
		}
	}
}
