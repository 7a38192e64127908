package results

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/simswarm/simswarm/internal/scavefilter"
)

// This file gives the tests a real OMNeT++ 6.1: the relocatable runtime in
// ../shared/omnetpp, unpacked once per machine into the user's cache
// directory (never into the repository), with aloha built there. Tests
// skip, saying why, where ../shared/omnetpp is absent.

func repoRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatal("no go.mod above the test's directory")
		}
	}
}

// sharedDir is ../shared beside the repository.
func sharedDir(t testing.TB) string { return filepath.Join(repoRoot(t), "..", "shared") }

// capturedFile is one of the real result files in ../shared/omnetpp-output.
func capturedFile(t testing.TB, name string) string {
	p := filepath.Join(sharedDir(t), "omnetpp-output", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real OMNeT++ output %s is not here (../shared/omnetpp-output): %v", name, err)
	}
	return p
}

// omnetppDir returns the omnetpp-6.1 directory of the unpacked runtime.
func omnetppDir(t testing.TB) string {
	t.Helper()
	tarball := filepath.Join(sharedDir(t), "omnetpp", "omnetpp-6.1-linux-x86_64.tar.zst")
	fi, err := os.Stat(tarball)
	if err != nil {
		t.Skipf("real OMNeT++ is not here (../shared/omnetpp): %v", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	base := filepath.Join(cache, "simswarm-test", fmt.Sprintf("omnetpp-%d-%d", fi.Size(), fi.ModTime().Unix()))
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		t.Fatal(err)
	}
	// Several test binaries may want it at once: one unpacks, the others wait.
	lock, err := os.OpenFile(base+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	dir := filepath.Join(base, "omnetpp-6.1")
	if _, err := os.Stat(filepath.Join(dir, "bin", "opp_scavetool")); err != nil {
		tmp := base + ".tmp"
		os.RemoveAll(tmp)
		if err := untarZstd(tarball, tmp); err != nil {
			t.Fatalf("unpack %s: %v", tarball, err)
		}
		os.RemoveAll(base)
		if err := os.Rename(tmp, base); err != nil {
			t.Fatal(err)
		}
	}
	aloha := filepath.Join(dir, "samples", "aloha")
	if _, err := os.Stat(filepath.Join(aloha, "aloha")); err != nil {
		if _, err := exec.LookPath("g++"); err != nil {
			t.Skip("g++ is not installed: cannot build OMNeT++'s aloha sample")
		}
		cmd := exec.Command("make", "MODE=release")
		cmd.Dir = aloha
		cmd.Env = oppEnv(dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build aloha: %v\n%s", err, out)
		}
	}
	return dir
}

func oppEnv(dir string) []string {
	env := []string{"PATH=" + filepath.Join(dir, "bin") + ":" + os.Getenv("PATH")}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "PATH=") {
			env = append(env, e)
		}
	}
	return env
}

func untarZstd(path, dst string) error {
	f, err := os.Open(path)
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
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(h.Name)
		if strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			return fmt.Errorf("unsafe path %q in archive", h.Name)
		}
		p := filepath.Join(dst, name)
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
			out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777|0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return err
			}
			if err := out.Close(); err != nil {
				return err
			}
		}
	}
}

// runAloha runs aloha's PureAlohaExperiment (42 runs, in one process) with
// extra arguments, writing into a new directory, and returns it.
func runAloha(t testing.TB, opp string, extra ...string) string {
	t.Helper()
	out := t.TempDir()
	args := append([]string{"-s", "-u", "Cmdenv", "-c", "PureAlohaExperiment", "-r", "0..41",
		"--sim-time-limit=5min", "--result-dir=" + out}, extra...)
	cmd := exec.Command("./aloha", args...)
	cmd.Dir = filepath.Join(opp, "samples", "aloha")
	cmd.Env = oppEnv(opp)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("aloha %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return out
}

// scavetool runs opp_scavetool with args.
func scavetool(t testing.TB, opp string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(opp, "bin", "opp_scavetool"), args...)
	cmd.Env = oppEnv(opp)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("opp_scavetool %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return string(b)
}

func mustFilter(t testing.TB, expr string) *scavefilter.Filter {
	t.Helper()
	f, err := scavefilter.Parse(expr)
	if err != nil {
		t.Fatal(err)
	}
	return f
}
