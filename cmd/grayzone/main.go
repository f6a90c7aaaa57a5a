// Command grayzone detects zonal gray failures from a workload's own signals
// and evacuates the impaired zone. See the README.
package main

import (
	"os"

	"github.com/grayzone/grayzone/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr)) }
