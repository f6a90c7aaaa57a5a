package emf

import (
	"os"
	"syscall"
)

// inode identifies the file behind a path, to notice rotation.
func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
