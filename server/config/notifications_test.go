package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/grayzone/grayzone/notify/event"
)

func TestNotifications(t *testing.T) {
	dir := t.TempDir()
	secret := strings.Repeat("ab", 20)
	if err := os.WriteFile(filepath.Join(dir, "hook.secret"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(base, "listen: 127.0.0.1:8080\n", `listen: 127.0.0.1:8080
notifications:
  dashboard_url: https://gz.example.com/
  alertmanagers:
    - url: http://127.0.0.1:9093
      resend_every: 30s
  webhooks:
    - name: ops
      url: https://hooks.example.com/gz
      secret_file: hook.secret
      events: [shift.started, approval.pending]
  retry: {initial: 2s, max: 1m, give_up_after: 1h}
`, 1)
	c, err := Parse(filepath.Join(dir, "serve.yaml"), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	n := c.Notifications
	if !n.Enabled() || n.DashboardURL != "https://gz.example.com/" || len(n.Alertmanagers) != 1 || len(n.Webhooks) != 1 {
		t.Fatalf("%+v", n)
	}
	if a := n.Alertmanagers[0]; a.Name != "alertmanager-1" || a.URL != "http://127.0.0.1:9093" || a.ResendEvery != 30*time.Second {
		t.Fatalf("alertmanager %+v", a)
	}
	if w := n.Webhooks[0]; w.Name != "ops" || string(w.Secret) != secret || len(w.Events) != 2 || w.Events[1] != event.ApprovalPending {
		t.Fatalf("webhook %+v", w)
	}
	if n.Retry.Initial != 2*time.Second || n.Retry.Max != time.Minute || n.Retry.GiveUpAfter != time.Hour {
		t.Fatalf("retry %+v", n.Retry)
	}
	c, err = Parse("serve.yaml", []byte(base))
	if err != nil || c.Notifications.Enabled() || c.Notifications.Retry.GiveUpAfter != 24*time.Hour {
		t.Fatalf("defaults: %+v %v", c.Notifications, err)
	}
}

func TestNotificationsErrors(t *testing.T) {
	for _, tt := range []struct{ add, want string }{
		{"notifications: {alertmanagers: [{url: nope}]}\n", `serve.yaml:2: notifications.alertmanagers[0].url: "nope" is not an http(s) URL`},
		{"notifications: {webhooks: [{url: http://h/}]}\n", "serve.yaml:2: notifications.webhooks[0]: missing secret_file"},
		{"notifications: {webhooks: [{url: http://h/, secret: short}]}\n", "serve.yaml:2: notifications.webhooks[0].secret: 5 characters; a webhook secret needs at least 32"},
		{"notifications: {webhooks: [{url: http://h/, secret_file: /nonexistent/x}]}\n", "serve.yaml:2: notifications.webhooks[0].secret_file: open /nonexistent/x"},
		{"notifications: {webhooks: [{url: http://h/, secret: " + strings.Repeat("x", 32) + ", events: [shift.begun]}]}\n", `serve.yaml:2: notifications.webhooks[0].events[0]: unknown event kind "shift.begun"`},
		{"notifications: {alertmanagers: [{url: http://a/, name: x}, {url: http://b/, name: x}]}\n", `serve.yaml:2: notifications.alertmanagers[1]: duplicate endpoint name "x"`},
		{"notifications: {retry: {initial: 1m, max: 1s}}\n", "serve.yaml:2: notifications.retry: max (1s) is below initial (1m0s)"},
		{"notifications: {slack: {}}\n", "serve.yaml:2: notifications.slack: unknown key"},
	} {
		doc := strings.Replace(base, "listen: 127.0.0.1:8080\n", "listen: 127.0.0.1:8080\n"+tt.add, 1)
		_, err := Parse("serve.yaml", []byte(doc))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line starting %q", tt.add, err, tt.want)
		}
	}
}

// examples/serve-alertmanager.yaml is examples/serve.yaml and an
// Alertmanager at 127.0.0.1:9093.
func TestExampleServeAlertmanager(t *testing.T) {
	base, err := Load(filepath.Join("..", "..", "examples", "serve.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(filepath.Join("..", "..", "examples", "serve-alertmanager.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	n := c.Notifications
	if len(n.Alertmanagers) != 1 || n.Alertmanagers[0].URL != "http://127.0.0.1:9093" || len(n.Webhooks) != 0 {
		t.Fatalf("notifications %+v", n)
	}
	c.Notifications, c.File = base.Notifications, base.File
	if !reflect.DeepEqual(c, base) {
		t.Fatal("examples/serve-alertmanager.yaml differs from examples/serve.yaml beyond its notifications")
	}
}
