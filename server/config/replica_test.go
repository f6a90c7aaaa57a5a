package config

import (
	"strings"
	"testing"
	"time"
)

func TestReplicaSettings(t *testing.T) {
	doc := strings.Replace(base, "listen: 127.0.0.1:8080\n", "listen: 127.0.0.1:8080\nstore: postgres://grayzone@db.internal:5432/grayzone\nreplica: {name: gz-a, advertise: 10.0.0.1:8080, lease: 6s}\n", 1)
	c, err := Parse("serve.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := Replica{Name: "gz-a", Advertise: "10.0.0.1:8080", Lease: 6 * time.Second}
	if c.Store != "postgres://grayzone@db.internal:5432/grayzone" || c.Replica != want {
		t.Fatalf("store %q replica %+v, want %+v", c.Store, c.Replica, want)
	}
	// Defaults: SQLite, a 10 s lease.
	c, err = Parse("serve.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store != "" || c.Replica.Lease != DefaultLease {
		t.Fatalf("defaults: store %q lease %s", c.Store, c.Replica.Lease)
	}
}

func TestReplicaErrors(t *testing.T) {
	for _, tt := range []struct{ add, want string }{
		{"store: /var/lib/grayzone\n", `serve.yaml:2: store: want a postgres:// URL (omit it for SQLite under data_dir), got "/var/lib/grayzone"`},
		{"replica: {lease: 100ms}\n", "serve.yaml:2: replica.lease: "},
		{"replica: {lease: 5m}\n", "serve.yaml:2: replica.lease: "},
		{"replica: {name: \"\"}\n", "serve.yaml:2: replica.name: must not be empty"},
		{"replica: {advertise: nope}\n", "serve.yaml:2: replica.advertise: "},
		{"replica: {leese: 5s}\n", "serve.yaml:2: replica.leese: unknown key (expected one of name, advertise, lease)"},
	} {
		doc := strings.Replace(base, "listen: 127.0.0.1:8080\n", "listen: 127.0.0.1:8080\n"+tt.add, 1)
		_, err := Parse("serve.yaml", []byte(doc))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line starting %q", tt.add, err, tt.want)
		}
	}
}
