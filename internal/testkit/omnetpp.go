package testkit

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// EnvOMNeTPP names an OMNeT++ installation to test against instead of the
// bundled runtime: the directory holding bin/opp_run (the omnetpp-6.1 root
// of a source build, say). Its samples must have been built or be buildable
// in place; OMNeTPP copies them before any test builds them.
const EnvOMNeTPP = "SIMSWARM_OMNETPP"

// EnvTestCache is where the bundled runtime is unpacked; by default
// simswarm-test under the user cache directory. Never inside the repository.
const EnvTestCache = "SIMSWARM_TEST_CACHE"

// runtimeArchive is the relocatable OMNeT++ runtime, relative to the
// directory beside the repository that holds shared test data.
const runtimeArchive = "omnetpp/omnetpp-6.1-linux-x86_64.tar.zst"

// OMNeT is a usable OMNeT++ installation.
type OMNeT struct {
	Root string // holds bin/, lib/, include/, samples/
	Bin  string // Root/bin
	// Env is the test process's environment with Bin first on PATH: what a
	// user who installed OMNeT++ has, and what builders and runners need.
	Env []string
}

// Sample is the path of one of the installation's samples. Tests copy it
// (CopySample) before building in it: the installation is shared.
func (o *OMNeT) Sample(name string) string { return filepath.Join(o.Root, "samples", name) }

// CopySample copies samples/name into dst/name without build outputs (out/,
// results/, the built program and libraries), so a test starts from the
// sources with their generated Makefile, as a user's checkout has them.
func (o *OMNeT) CopySample(t testing.TB, name, dst string) string {
	t.Helper()
	to := filepath.Join(dst, name)
	if err := copyTree(o.Sample(name), to, omnetBuildOutput); err != nil {
		t.Fatalf("copy sample %s: %v", name, err)
	}
	return to
}

// Setenv puts the installation on the test process's PATH for the test's
// duration (t.Setenv: not for parallel tests).
func (o *OMNeT) Setenv(t *testing.T) {
	t.Setenv("PATH", o.Bin+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// OMNeTPP returns a real OMNeT++ installation for the test, or skips it
// saying why there is none. With $SIMSWARM_OMNETPP set, that installation
// is used as it is. Otherwise the relocatable runtime in the shared test
// data (../shared/omnetpp/ beside the repository) is unpacked once into
// the test cache (see EnvTestCache), into a directory named by the
// archive's hash: test packages running in parallel share one unpacked
// copy (an flock serialises the first unpack), and a new archive gets a
// new directory.
func OMNeTPP(t testing.TB) *OMNeT {
	t.Helper()
	o, err := omnetOnce()
	if err != nil {
		if errors.Is(err, errNoOMNeT) {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	return o
}

var errNoOMNeT = errors.New("no OMNeT++")

var omnetOnce = sync.OnceValues(findOMNeT)

func findOMNeT() (*OMNeT, error) {
	if root := os.Getenv(EnvOMNeTPP); root != "" {
		if _, err := os.Stat(filepath.Join(root, "bin", "opp_run")); err != nil {
			return nil, fmt.Errorf("$%s=%s: no bin/opp_run there: %v", EnvOMNeTPP, root, err)
		}
		return newOMNeT(root), nil
	}
	shared, err := SharedDir()
	if err != nil {
		return nil, fmt.Errorf("%w: %v; set $%s to an OMNeT++ installation", errNoOMNeT, err, EnvOMNeTPP)
	}
	archive := filepath.Join(shared, runtimeArchive)
	if _, err := os.Stat(archive); err != nil {
		return nil, fmt.Errorf("%w: the OMNeT++ runtime %s is absent; set $%s to an OMNeT++ installation", errNoOMNeT, archive, EnvOMNeTPP)
	}
	root, err := UnpackOMNeTPP(archive, "")
	if err != nil {
		return nil, err
	}
	return newOMNeT(root), nil
}

func newOMNeT(root string) *OMNeT {
	bin := filepath.Join(root, "bin")
	env := []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return &OMNeT{Root: root, Bin: bin, Env: env}
}

// SharedDir is the directory of shared test data beside the repository
// (../shared from the directory holding go.mod).
func SharedDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			shared := filepath.Join(filepath.Dir(d), "shared")
			if _, err := os.Stat(shared); err != nil {
				return "", fmt.Errorf("no shared test data beside the repository (%s)", shared)
			}
			return shared, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("not inside the repository")
		}
	}
}

// UnpackOMNeTPP unpacks the runtime archive into cache (EnvTestCache or the
// user cache directory when empty) unless an earlier call did, and returns
// the OMNeT++ root inside it. Tests call it on first use (through OMNeTPP),
// so CI needs no step of its own; bench/ scripts use the same copy.
func UnpackOMNeTPP(archive, cache string) (string, error) {
	sum, err := fileHash(archive)
	if err != nil {
		return "", fmt.Errorf("hash the OMNeT++ runtime: %w", err)
	}
	if cache == "" {
		if cache = os.Getenv(EnvTestCache); cache == "" {
			base, err := os.UserCacheDir()
			if err != nil {
				base = os.TempDir()
			}
			cache = filepath.Join(base, "simswarm-test")
		}
	}
	dir := filepath.Join(cache, "omnetpp-"+sum[:16])
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("test cache: %w", err)
	}
	lock, err := os.OpenFile(dir+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", fmt.Errorf("test cache: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", dir, err)
	}
	ready := filepath.Join(dir, ".ready")
	if _, err := os.Stat(ready); err != nil {
		// A half-finished unpack (killed test) is started over.
		if err := os.RemoveAll(dir); err != nil {
			return "", err
		}
		if err := untarZstd(archive, dir); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("unpack %s: %w", archive, err)
		}
		if err := os.WriteFile(ready, nil, 0o644); err != nil {
			return "", err
		}
	}
	roots, _ := filepath.Glob(filepath.Join(dir, "omnetpp-*", "bin", "opp_run"))
	if len(roots) != 1 {
		return "", fmt.Errorf("%s: want one omnetpp-*/bin/opp_run, found %d", dir, len(roots))
	}
	return filepath.Dir(filepath.Dir(roots[0])), nil
}

func fileHash(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// untarZstd extracts a trusted archive (our own test data) into dir.
func untarZstd(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		return err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if name == ".." || strings.HasPrefix(name, "../") || filepath.IsAbs(name) {
			return fmt.Errorf("entry %q leaves the directory", h.Name)
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, os.FileMode(h.Mode).Perm())
			if err != nil {
				return err
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}

// omnetBuildOutput names what a build or a campaign leaves in a sample:
// out/, results/, generated message classes, and compiled programs and
// libraries (ELF files; queuenet's program is a script and stays).
func omnetBuildOutput(rel, src string, isDir bool) bool {
	first := strings.Split(rel, "/")[0]
	if first == "out" || first == "results" {
		return true
	}
	if isDir {
		return false
	}
	if strings.HasSuffix(rel, "_m.cc") || strings.HasSuffix(rel, "_m.h") {
		return true
	}
	f, err := os.Open(src)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, 4)
	_, _ = io.ReadFull(f, magic)
	return string(magic) == "\x7fELF"
}
