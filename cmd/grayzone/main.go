// Command grayzone detects zonal gray failures from a workload's own signals
// and evacuates the impaired zone. See the README.
package main

import (
	"os"

	// CA roots inside the binary, used only where the system has none (the
	// container image is FROM scratch): the AWS SDK, Kubernetes and webhook
	// clients verify TLS against them. See `grayzone version`.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/grayzone/grayzone/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
