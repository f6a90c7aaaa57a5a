package benchmark

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// child is a process the benchmark started.
type child struct {
	cmd  *exec.Cmd
	name string
	out  *bufio.Reader
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop ends the child with SIGTERM, then SIGKILL after 3 s.
func (c *child) stop() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

// cpuTicks is utime+stime of a process from /proc/PID/stat, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	t, err := cpuTimes(pid)
	return t.total(), err
}

// procCPU is a process's CPU time in clock ticks: in user space (utime) and
// in the kernel on its behalf (stime), all its threads.
type procCPU struct{ user, system int64 }

func (t procCPU) total() int64 { return t.user + t.system }
func (t procCPU) sub(before procCPU) procCPU {
	return procCPU{t.user - before.user, t.system - before.system}
}

// cpuTimes reads utime and stime from /proc/PID/stat.
func cpuTimes(pid int) (procCPU, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procCPU{}, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procCPU{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(s[i+1:])
	// After the command: state is field 3, utime 14, stime 15 (1-based).
	if len(f) < 13 {
		return procCPU{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return procCPU{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return procCPU{user: u, system: st}, nil
}

// clockTicksPerSecond is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicksPerSecond = 100

// procCounts is what the kernel counted for a process: its read(2) and
// write(2)-family system calls (/proc/PID/io syscr, syscw; recv/send and
// the like are not counted there) and its context switches, voluntary and
// involuntary, summed over its threads (/proc/PID/task/*/status).
type procCounts struct {
	reads, writes, switches int64
	io                      bool // /proc/PID/io was readable
}

func readProcCounts(pid int) procCounts {
	var c procCounts
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(l, ": ")
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			switch k {
			case "syscr":
				c.reads, c.io = n, true
			case "syscw":
				c.writes = n
			}
		}
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // the thread ended meanwhile
		}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				c.switches += n
			}
		}
	}
	return c
}
