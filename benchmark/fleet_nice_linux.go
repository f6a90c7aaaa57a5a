package benchmark

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// reniceSelf sets every thread of this process to nice n: on Linux a
// priority is a thread's, and a thread takes its creator's.
func reniceSelf(n int) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, n); err != nil {
			return fmt.Errorf("setpriority(thread %d, %d): %w", tid, n, err)
		}
	}
	return nil
}
