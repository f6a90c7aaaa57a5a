// Command middleware is a small service instrumented with grayzone's Go
// middleware: it ships per-second aggregates to grayzone serve and exposes
// the same counts for Prometheus on /metrics.
//
//	go run ./examples/middleware -grayzone http://127.0.0.1:8080 -resource web \
//	    -zone use2-az1 -instance i-1 -token-file examples/tokens.txt
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"

	"github.com/grayzone/grayzone/telemetry/middleware"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9001", "address to serve on")
	endpoint := flag.String("grayzone", "", "grayzone serve's base URL (empty: only expose /metrics)")
	resource := flag.String("resource", "web", "the resource in grayzone's configuration")
	zone := flag.String("zone", "", "this instance's zone (required)")
	instance := flag.String("instance", "", "this instance's id (required)")
	tokenFile := flag.String("token-file", "", "file whose first line is a grayzone API token")
	flag.Parse()

	var token string
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			log.Fatal(err)
		}
		token, _, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
	}
	mw, err := middleware.New(middleware.Options{Endpoint: *endpoint, Resource: *resource, Token: token, Zone: *zone, Instance: *instance})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "order %s\n", r.PathValue("id"))
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /metrics", mw.Metrics())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() { _ = mw.Run(ctx) }()
	srv := &http.Server{Addr: *listen, Handler: mw.Wrap(mux)}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	log.Printf("serving on http://%s (zone %s, instance %s)", *listen, *zone, *instance)
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
