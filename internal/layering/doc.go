// Package layering holds no code: its test enforces the dependency rules of
// docs/architecture.md, so that the tree keeps reading like the diagram. The
// production core (engine, telemetry, actuator, internal) never imports the
// server, the lab, the benchmarks or the command line; the server never
// imports the lab's machinery.
package layering
