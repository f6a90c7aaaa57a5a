package cli

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// terminalWidth returns a function giving w's width in columns when w is a
// terminal, else nil. The function asks the terminal each time, so a caller
// that asks at every redraw follows a resize without handling SIGWINCH.
func terminalWidth(w io.Writer) func() int {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	fd := int(f.Fd())
	// TIOCGWINSZ succeeds only on a terminal: one call both detects it and
	// proves the width can be read.
	if _, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ); err != nil {
		return nil
	}
	return func() int {
		ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
		if err != nil {
			return 0
		}
		return int(ws.Col)
	}
}
