package main

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"os"
	"os/exec"
	"slices"
	"testing"
)

// Where the system has no CA roots (the image is FROM scratch), the
// binary's TLS clients still verify servers: x509.SystemCertPool is the
// embedded bundle, and it holds the roots AWS's endpoints chain to. The
// check runs in a child process whose environment points Go's root
// loading at nothing, because the system pool is loaded once per process.
func TestEmbeddedRootsWhereTheSystemHasNone(t *testing.T) {
	if os.Getenv("GRAYZONE_ROOTS_CHILD") == "1" {
		checkRoots(t)
		return
	}
	empty := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestEmbeddedRootsWhereTheSystemHasNone$", "-test.v")
	cmd.Env = append(os.Environ(), "GRAYZONE_ROOTS_CHILD=1", "SSL_CERT_FILE="+empty+"/none.pem", "SSL_CERT_DIR="+empty)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("with no system roots: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

func checkRoots(t *testing.T) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		t.Fatalf("SystemCertPool with no system roots: %v", err)
	}
	//lint:ignore SA1019 not a platform-verifier pool: Subjects lists it
	subjects := pool.Subjects()
	var names []string
	for _, raw := range subjects {
		var rdn pkix.RDNSequence
		if _, err := asn1.Unmarshal(raw, &rdn); err != nil {
			t.Fatal(err)
		}
		var n pkix.Name
		n.FillFromRDNSequence(&rdn)
		names = append(names, n.CommonName)
	}
	t.Logf("%d roots with no system roots", len(names))
	if len(names) < 50 {
		t.Errorf("only %d roots: %v", len(names), names)
	}
	// Amazon Trust Services roots (AWS's endpoints) and Let's Encrypt's.
	for _, want := range []string{"Amazon Root CA 1", "Starfield Services Root Certificate Authority - G2", "ISRG Root X1"} {
		if !slices.Contains(names, want) {
			t.Errorf("the embedded roots lack %q", want)
		}
	}
}
