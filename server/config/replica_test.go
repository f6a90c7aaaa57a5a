package config

import (
	"os"
	"path/filepath"
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
	if c, err := Parse("serve.yaml", []byte(strings.Replace(base, "listen: 127.0.0.1:8080\n", "listen: 127.0.0.1:8080\nstore: postgres://db/gz\nreplica: {sharded: true}\n", 1))); err != nil || !c.Replica.Sharded {
		t.Fatalf("sharded: %v %+v", err, c.Replica)
	}
	if c.Store != "" || c.Replica.Lease != DefaultLease || c.Replica.Sharded {
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
		{"replica: {leese: 5s}\n", "serve.yaml:2: replica.leese: unknown key (expected one of name, advertise, lease, sharded)"},
		{"replica: {sharded: true}\n", "serve.yaml:2: replica.sharded: needs a shared store"},
		{"store: postgres://db/gz\nreplica: {sharded: maybe}\n", "serve.yaml:3: replica.sharded: "},
		{"store: postgres://db/gz\nstore_file: dsn\n", "serve.yaml:3: store_file: give store or store_file, not both"},
		{"store_file: \" \"\n", "serve.yaml:2: store_file: must not be empty"},
	} {
		doc := strings.Replace(base, "listen: 127.0.0.1:8080\n", "listen: 127.0.0.1:8080\n"+tt.add, 1)
		_, err := Parse("serve.yaml", []byte(doc))
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: error %v, want one line starting %q", tt.add, err, tt.want)
		}
	}
}

// store_file: the URL (with its password) from a file, such as a mounted
// Secret, resolved against the configuration's directory; never echoed.
func TestStoreFile(t *testing.T) {
	dir := t.TempDir()
	doc := strings.Replace(base, "listen: 127.0.0.1:8080\n", "listen: 127.0.0.1:8080\nstore_file: store/dsn\n", 1)
	c, err := Parse(filepath.Join(dir, "serve.yaml"), []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.StoreFile != filepath.Join(dir, "store", "dsn") || c.Store != "" {
		t.Fatalf("store_file %q store %q", c.StoreFile, c.Store)
	}
	if err := c.LoadStore(); err == nil || !strings.HasPrefix(err.Error(), "store_file: open ") {
		t.Errorf("missing file: %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "store"), 0o700); err != nil {
		t.Fatal(err)
	}
	const secret = "s3cret-password"
	for _, bad := range []string{"mysql://gz:" + secret + "@db/gz", "postgres://gz:" + secret + "@db/gz\npostgres://other", ""} {
		if err := os.WriteFile(c.StoreFile, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		err := c.LoadStore()
		if err == nil || err.Error() != "store_file: "+c.StoreFile+" does not hold one postgres:// URL" || strings.Contains(err.Error(), secret) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if err := os.WriteFile(c.StoreFile, []byte("postgres://gz:"+secret+"@db:5432/gz?sslmode=require\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.LoadStore(); err != nil || c.Store != "postgres://gz:"+secret+"@db:5432/gz?sslmode=require" {
		t.Fatalf("store %q, %v", c.Store, err)
	}
}
