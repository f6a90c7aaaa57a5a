//go:build !linux

package benchmark

import "errors"

// reniceSelf is Linux's only (a priority per thread).
func reniceSelf(int) error {
	return errors.New("only on Linux")
}
