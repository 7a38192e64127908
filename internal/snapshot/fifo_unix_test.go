//go:build unix

package snapshot

import "syscall"

// mkfifo creates a named pipe, a special file Scan must skip.
func mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }
