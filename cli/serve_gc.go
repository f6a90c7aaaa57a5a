package cli

import (
	"log/slog"
	"runtime/debug"
)

// applyGC sets the garbage collector's target (percent of the live heap
// allocated before the next collection; 0 leaves Go's default of 100, or
// GOGC from the environment) and a soft memory limit in MiB (0 leaves none,
// or GOMEMLIMIT). A fleet's serve holds a large heap and allocates fast:
// each collection then marks the whole live heap and slows what runs
// meanwhile (the API's calls wait on it); a higher target makes them rarer
// for more memory, and a memory limit bounds that memory by collecting
// sooner as it nears the limit (docs/ha.md, "Garbage collection").
func applyGC(log *slog.Logger, percent, limitMiB int) {
	if percent > 0 {
		debug.SetGCPercent(percent)
	}
	if limitMiB > 0 {
		debug.SetMemoryLimit(int64(limitMiB) << 20)
	}
	if percent > 0 || limitMiB > 0 {
		gc := debug.SetGCPercent(-1)
		debug.SetGCPercent(gc)
		log.Info("garbage collector", "gc_percent", gc, "memory_limit_mib", debug.SetMemoryLimit(-1)>>20)
	}
}
