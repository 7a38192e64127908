//go:build !linux && !darwin

package snapshot

import (
	"io/fs"
	"os"
)

// openFlags: elsewhere there is no portable O_NOFOLLOW; the file was just
// classified as regular by Lstat and is checked again with Stat after opening.
const openFlags = os.O_RDONLY

// statIdentity: no inode or ctime here, so the hash cache is keyed by size and
// mtime only.
func statIdentity(fs.FileInfo) (ino uint64, ctime int64) { return 0, 0 }
