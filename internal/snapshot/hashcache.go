package snapshot

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/simswarm/simswarm/internal/atomicfile"
)

// hashCacheMagic starts a cache file; a file with another start (older
// layout, or not a cache at all) is treated as empty.
const hashCacheMagic = "simswarm-hashcache-2\n"

// racyWindow: a file modified this recently before the scan started is hashed
// but not cached. File timestamps are coarse (a kernel tick; a second or two
// on some filesystems), so a file rewritten with the same size right after
// being hashed could keep the very same mtime and ctime and the cache would
// hand out the old hash; git's "racily clean" index entries guard against the
// same thing. Tests lower it to 0.
var racyWindow = 2 * time.Second

// fileStamp identifies one version of a file on disk without reading it.
type fileStamp struct {
	Size  int64
	MTime int64 // ns
	Ino   uint64
	CTime int64 // ns
}

func stampOf(fi os.FileInfo) fileStamp {
	ino, ctime := statIdentity(fi)
	return fileStamp{Size: fi.Size(), MTime: fi.ModTime().UnixNano(), Ino: ino, CTime: ctime}
}

type cachedHash struct {
	Stamp fileStamp
	Sum   [32]byte
}

// hashCache maps a path relative to the root plus its stamp to the content
// hash. Only the entries seen in the current scan are written back, so the
// file does not grow with deleted files.
type hashCache struct {
	path    string
	root    string
	trustTo int64 // entries with mtime or ctime at or after this (ns) are not stored

	mu      sync.Mutex
	old     map[string]cachedHash
	cur     map[string]cachedHash
	changed bool
}

// loadHashCache reads the cache file; a missing, unreadable or corrupt file
// gives an empty cache, which is rewritten at the end of the scan.
func loadHashCache(file, root string, scanStart time.Time) *hashCache {
	c := &hashCache{
		path:    file,
		root:    root,
		trustTo: scanStart.Add(-racyWindow).UnixNano(),
		old:     map[string]cachedHash{},
		cur:     map[string]cachedHash{},
	}
	b, err := os.ReadFile(file)
	if err != nil {
		c.changed = true
		return c
	}
	entries, ok := decodeHashCache(b, root)
	if !ok {
		c.changed = true
		return c
	}
	c.old = entries
	c.cur = make(map[string]cachedHash, len(entries))
	return c
}

// lookup returns the cached hash of rel if its stamp is unchanged.
func (c *hashCache) lookup(rel string, st fileStamp) ([32]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.old[rel]
	if !ok || e.Stamp != st {
		return [32]byte{}, false
	}
	c.cur[rel] = e
	return e.Sum, true
}

// store records a freshly computed hash, unless the file is too recent to
// trust its stamp (see racyWindow).
func (c *hashCache) store(rel string, st fileStamp, sum [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.changed = true
	if st.MTime >= c.trustTo || st.CTime >= c.trustTo {
		return
	}
	c.cur[rel] = cachedHash{Stamp: st, Sum: sum}
}

// save writes the entries of this scan, atomically (temp file + rename) so a
// concurrent or interrupted scan never leaves a half-written cache.
func (c *hashCache) save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.changed && len(c.cur) == len(c.old) {
		return nil
	}
	dir := filepath.Dir(c.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("snapshot: writing hash cache %s: %w", c.path, err)
	}
	if err := atomicfile.WriteFile(c.path, encodeHashCache(c.root, c.cur), 0o644); err != nil {
		return fmt.Errorf("snapshot: writing hash cache %s: %w", c.path, err)
	}
	return nil
}

// The cache file is a small binary format rather than gob or JSON: it is read
// and written on every scan and must stay cheap for 100 000 files.
//
//	magic, uvarint len(root), root, uvarint count,
//	count x (uvarint len(path), path, varint size, varint mtime,
//	         uvarint inode, varint ctime, 32-byte sha256),
//	crc32c of all the above (4 bytes, big endian)
//
// The checksum makes a truncated or damaged file read as empty instead of
// yielding wrong hashes.

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func encodeHashCache(root string, entries map[string]cachedHash) []byte {
	b := make([]byte, 0, len(hashCacheMagic)+len(root)+len(entries)*96+16)
	b = append(b, hashCacheMagic...)
	b = binary.AppendUvarint(b, uint64(len(root)))
	b = append(b, root...)
	b = binary.AppendUvarint(b, uint64(len(entries)))
	for p, e := range entries {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
		b = binary.AppendVarint(b, e.Stamp.Size)
		b = binary.AppendVarint(b, e.Stamp.MTime)
		b = binary.AppendUvarint(b, e.Stamp.Ino)
		b = binary.AppendVarint(b, e.Stamp.CTime)
		b = append(b, e.Sum[:]...)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

func decodeHashCache(b []byte, root string) (map[string]cachedHash, bool) {
	if len(b) < len(hashCacheMagic)+4 || string(b[:len(hashCacheMagic)]) != hashCacheMagic {
		return nil, false
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return nil, false
	}
	r := cacheReader{b: body[len(hashCacheMagic):]}
	if r.str() != root {
		return nil, false
	}
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		return nil, false
	}
	entries := make(map[string]cachedHash, n)
	for range n {
		p := r.str()
		var e cachedHash
		e.Stamp.Size = r.varint()
		e.Stamp.MTime = r.varint()
		e.Stamp.Ino = r.uvarint()
		e.Stamp.CTime = r.varint()
		r.bytes(e.Sum[:])
		if r.bad {
			return nil, false
		}
		entries[p] = e
	}
	return entries, !r.bad && len(r.b) == 0
}

// cacheReader consumes a byte slice; any overrun sets bad and yields zeros.
type cacheReader struct {
	b   []byte
	bad bool
}

func (r *cacheReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *cacheReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *cacheReader) str() string {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *cacheReader) bytes(dst []byte) {
	if len(r.b) < len(dst) {
		r.bad = true
		return
	}
	copy(dst, r.b)
	r.b = r.b[len(dst):]
}
