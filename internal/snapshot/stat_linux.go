package snapshot

import (
	"io/fs"
	"syscall"
)

// openFlags open a file for hashing without following a symlink that replaced
// it since it was classified, and without blocking if it became a FIFO.
const openFlags = syscall.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// statIdentity returns the inode and ctime (ns) used to key the hash cache.
// ctime changes on every content write and on any utimes call, so a file
// whose mtime was set back still misses the cache.
func statIdentity(fi fs.FileInfo) (ino uint64, ctime int64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino, st.Ctim.Sec*1e9 + st.Ctim.Nsec
	}
	return 0, 0
}
