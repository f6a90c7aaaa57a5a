package cli

import (
	"crypto/x509"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/x509roots/fallback/bundle"
)

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print grayzone's version, the Go it was built with, and where its TLS roots come from",
		Long: `version prints the module version and build settings, and the CA roots TLS
clients (AWS, Kubernetes, webhooks) verify servers against: the system's
(SSL_CERT_FILE, SSL_CERT_DIR, /etc/ssl/...), or, where the system has none,
as in the container image (FROM scratch), the Mozilla bundle compiled into
the binary (golang.org/x/crypto/x509roots/fallback).`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			version, settings := "(unknown)", ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				version = bi.Main.Version
				for _, s := range bi.Settings {
					switch s.Key {
					case "CGO_ENABLED", "-trimpath", "vcs.revision", "vcs.time", "vcs.modified":
						settings += " " + s.Key + "=" + s.Value
					}
				}
			}
			fmt.Fprintf(stdout, "grayzone %s %s %s/%s%s\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, settings)
			fmt.Fprintln(stdout, "tls roots:", tlsRoots())
			return nil
		},
	}
}

// tlsRoots says how many CA roots x509.SystemCertPool holds and whose they
// are. The fallback pool is used only when the system provides none; it
// is recognised by being equal to the embedded bundle.
func tlsRoots() string {
	pool, err := x509.SystemCertPool()
	if err != nil {
		return "none (" + err.Error() + ")"
	}
	embedded := x509.NewCertPool()
	n := 0
	for r := range bundle.Roots() {
		c, err := x509.ParseCertificate(r.Certificate)
		if err != nil {
			return fmt.Sprintf("the embedded bundle does not parse: %v", err)
		}
		if r.Constraint == nil {
			embedded.AddCert(c)
		} else {
			embedded.AddCertWithConstraint(c, r.Constraint)
		}
		n++
	}
	if pool.Equal(embedded) {
		return fmt.Sprintf("%d, embedded (the system has none)", n)
	}
	//lint:ignore SA1019 the pool is not the Windows or macOS system pool, whose Subjects is empty
	return fmt.Sprintf("%d, the system's", len(pool.Subjects()))
}
