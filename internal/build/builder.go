// Package build is the builder worker: it takes build jobs, brings a
// persistent per-project workspace up to the job's snapshot (so make stays
// incremental), runs the build command, and stores the build's outputs as an
// artifact keyed by snapshot, recipe and toolchain.
package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/archive"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/layout"
	"github.com/simswarm/simswarm/internal/proc"
	"github.com/simswarm/simswarm/internal/projenv"
	"github.com/simswarm/simswarm/internal/snapshot"
	"github.com/simswarm/simswarm/internal/treestore"
	"golang.org/x/sys/unix"
)

// Builder takes build jobs from the engine.
type Builder struct {
	Eng  *engine.Engine
	Dir  string // holds one workspace per project
	Jobs int    // parallelism handed to the build as {jobs}
	Host string
	Log  *slog.Logger
	// Accel configures ccache and distcc; the zero value builds plainly.
	Accel Accel
	// IdleExit ends Serve after this long without a build job, LostExit
	// after this long without the engine (0: never): a builder that is a
	// Slurm job releases its allocation once the build it came for is done,
	// or once its client is gone.
	IdleExit, LostExit time.Duration
	// Slurm is the builder's Slurm job, shown in status.
	Slurm string

	toolchain string
}

func (b *Builder) trees() treestore.Store { return treestore.New(b.Eng) }

// Toolchain identifies the compilers a build's outputs depend on. It is
// computed once: asking the compilers costs processes, and they do not change
// under a running builder.
func Toolchain() string {
	var parts []string
	for _, c := range []string{"cc", "c++"} {
		out, err := exec.Command(c, "--version").Output()
		if err == nil {
			first, _, _ := strings.Cut(string(out), "\n")
			parts = append(parts, c+": "+strings.TrimSpace(first))
		}
	}
	parts = append(parts, runtime.GOOS+"/"+runtime.GOARCH)
	if img := os.Getenv("SIMSWARM_TOOLCHAIN"); img != "" {
		parts = append(parts, "image: "+img)
	}
	return strings.Join(parts, "; ")
}

// Serve takes build jobs until ctx ends.
func (b *Builder) Serve(ctx context.Context) error {
	if b.Jobs < 1 {
		b.Jobs = runtime.NumCPU()
	}
	if b.Log == nil {
		b.Log = slog.Default()
	}
	b.toolchain = Toolchain()
	var busy atomic.Int32
	id := engine.WorkerID(b.Host, "")
	// Serve returns only once the heartbeat has removed the builder: its
	// caller may close the connection next, and a heartbeat still pending
	// then would announce a stopped builder for a minute.
	beat, changed := make(chan struct{}), make(chan struct{}, 1)
	defer func() { <-beat }()
	// Ending on IdleExit or LostExit ends the heartbeat first.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(beat)
		b.Eng.Heartbeat(ctx, func() simswarm.Worker {
			return simswarm.Worker{ID: id, Host: b.Host, Role: simswarm.RoleBuilder, Slots: 1, Busy: int(busy.Load()), Version: simswarm.Version, Seen: time.Now(), Slurm: b.Slurm}
		}, changed)
	}()
	go b.Eng.WatchExits(ctx, engine.Exits{Idle: b.IdleExit, Lost: b.LostExit, Work: "build"}, func() bool { return busy.Load() == 0 }, func(why string) {
		b.Log.Info("builder: ending: " + why)
		cancel()
	})
	b.Eng.Serve(ctx, engine.Loop{Queue: engine.QueueBuild, Log: b.Log, Busy: func(on bool) {
		if on {
			busy.Store(1)
		} else {
			busy.Store(0)
		}
		engine.Poke(changed)
	}}, b)
	return nil
}

// Handle builds one job and answers it.
func (b *Builder) Handle(ctx context.Context, l *engine.Lease) {
	job, err := engine.Decode[simswarm.BuildJob](l, simswarm.RoleBuilder)
	if err != nil {
		b.Log.Error("builder: " + err.Error())
		return
	}
	rec := simswarm.BuildRecord{Key: job.Body.Key, Request: job.Body.Request, Host: b.Host, Toolchain: b.toolchain}
	if job.Refused != "" {
		rec.State, rec.Error = simswarm.BuildFailed, job.Refused
		b.finish(ctx, job, &rec)
		return
	}
	start := time.Now()
	if err := b.build(ctx, &job.Body, &rec); err != nil {
		if ctx.Err() != nil {
			// Shutting down: let another builder take it.
			l.GiveBack()
			return
		}
		rec.State = simswarm.BuildFailed
		if rec.Error == "" {
			rec.Error = err.Error()
		}
	}
	rec.Wall = time.Since(start)
	b.finish(ctx, job, &rec)
}

func (b *Builder) finish(ctx context.Context, job *engine.Job[simswarm.BuildJob], rec *simswarm.BuildRecord) {
	rec.Finished = time.Now()
	if err := job.Settle(ctx, engine.BuildAnswer(job.Body.Project, rec)); err != nil {
		b.Log.Error("builder: " + err.Error())
		return
	}
	b.Log.Info("build finished", "key", simswarm.Short(rec.Key), "state", rec.State, "cached", rec.Cached, "wall", rec.Wall)
}

func (b *Builder) build(ctx context.Context, job *simswarm.BuildJob, rec *simswarm.BuildRecord) error {
	art := simswarm.ArtifactKey(job.Key, b.toolchain)
	rec.Artifact = art
	if !job.Rebuild {
		if prev, ok, _ := b.Eng.Build(ctx, job.Key); ok && prev.State == simswarm.BuildSucceeded && prev.Artifact == art {
			if has, err := b.trees().HasArtifact(ctx, art); err == nil && has {
				rec.State, rec.Cached, rec.Files, rec.Bytes, rec.Log = simswarm.BuildSucceeded, true, prev.Files, prev.Bytes, prev.Log
				return nil
			}
		}
	}
	man, err := b.trees().Manifest(ctx, job.Snapshot)
	if err != nil {
		return err
	}
	// A project that uses others builds in a workspace holding them all at
	// their places; it is another directory than the project's own alone.
	top := filepath.Join(b.Dir, simswarm.Token(job.Project))
	if job.Layout != nil {
		top += ".tree"
	}
	ws, err := layout.Place(top, job.Layout)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return fmt.Errorf("workspace: %w", err)
	}
	unlock, err := lockFile(top + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	if err := layout.Uses(ctx, b.trees(), top, job.Layout, func(u simswarm.Use, files int, bytes int64) {
		b.Log.Info("builder: used project laid out", "project", u.Project, "dir", u.Dir, "files", files, "artifact_bytes", bytes)
	}); err != nil {
		return fmt.Errorf("prepare workspace: %w", err)
	}
	// A workspace seeded from the user's own build compiles as the user
	// did, without compiler wrappers: a Makefile may take its options from
	// the compiler it finds (INET turns precompiled headers off when `which
	// $(CC)` names ccache), and other options would compile every one of
	// the user's objects again.
	userBuild := top + ".userbuild"
	if _, err := os.Stat(filepath.Join(ws, snapshot.StateFile)); err != nil && job.Seed != "" && job.Host == b.Host {
		n, built, err := seed(ws, job.Seed, man)
		if built {
			_ = os.WriteFile(userBuild, []byte(job.Seed+"\n"), 0o644)
		} else {
			_ = os.Remove(userBuild)
		}
		b.Log.Info("builder: fresh workspace seeded from the user's tree", "from", job.Seed, "files", n, "built", built, "err", err)
	}
	if err := b.trees().Materialize(ctx, ws, man); err != nil {
		return fmt.Errorf("prepare workspace: %w", err)
	}
	var logBuf bytes.Buffer
	if job.Recipe.Command != "" {
		_, err := os.Stat(userBuild)
		env, jobs, warnings := b.environment(ctx, err == nil)
		env = projenv.Environ(env, job.Recipe.Env, top)
		rec.Warnings = warnings
		for _, w := range warnings {
			fmt.Fprintf(&logBuf, "simswarm: warning: %s\n", w)
			b.Log.Info("builder: "+w, "build", simswarm.Short(job.Key))
		}
		cmdline := strings.ReplaceAll(job.Recipe.Command, "{jobs}", strconv.Itoa(jobs))
		fmt.Fprintf(&logBuf, "$ %s\n", cmdline)
		b.Eng.PublishBuildProgress(job.Request, simswarm.BuildProgress{Command: cmdline})
		lines, compiled := b.streamer(job.Request)
		defer func() { rec.Compiled = compiled() }()
		res, err := proc.Run(ctx, proc.Spec{
			Argv:      []string{"/bin/sh", "-c", cmdline},
			Dir:       ws,
			Env:       env,
			Output:    &limitedBuffer{buf: &logBuf, max: 32 << 20},
			TailBytes: 8 << 10,
			OnLine:    lines,
		})
		if err != nil {
			return fmt.Errorf("start build: %w", err)
		}
		rec.Log = engine.BuildLogObject(art)
		if perr := b.Eng.PutBytes(ctx, rec.Log, logBuf.Bytes()); perr != nil {
			b.Log.Warn("builder: store log", "err", perr)
			rec.Log = ""
		}
		if res.Failed() {
			rec.Tail = lastLines(res.Tail, 40)
			rec.Error = fmt.Sprintf("build command %q: %s", cmdline, res.Describe())
			return errors.New(rec.Error)
		}
	}
	outputs, err := Outputs(ws, man, job.Recipe.Artifacts)
	if err != nil {
		return err
	}
	if job.Recipe.Command != "" && len(job.Recipe.Artifacts) > 0 && len(outputs) == 0 {
		return fmt.Errorf("build produced no files matching artifacts %v", job.Recipe.Artifacts)
	}
	pr, pw := io.Pipe()
	var packed int64
	go func() {
		n, err := archive.Pack(pw, ws, outputs)
		packed = n
		pw.CloseWithError(err)
	}()
	if err := b.trees().PutArtifact(ctx, art, pr); err != nil {
		return fmt.Errorf("store artifact: %w", err)
	}
	rec.State, rec.Files, rec.Bytes = simswarm.BuildSucceeded, len(outputs), packed
	return nil
}

// objectFile matches what a build leaves behind that runs never need.
func objectFile(name string) bool {
	switch path.Ext(name) {
	case ".o", ".obj", ".d", ".a", ".gcno", ".gcda", ".pch", ".gch":
		return true
	}
	return strings.HasPrefix(path.Base(name), ".simswarm")
}

// Outputs lists the artifact's files: those matching globs, or, without
// globs, every file in the workspace that the snapshot did not put there
// (so an unchanged binary from an earlier incremental build still counts),
// except object files. Symlinks are kept as they are.
func Outputs(ws string, man *snapshot.Manifest, globs []string) ([]string, error) {
	inSnap := make(map[string]bool, len(man.Entries))
	for _, e := range man.Entries {
		inSnap[e.Path] = true
	}
	var out []string
	err := filepath.WalkDir(ws, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(ws, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() && d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		if len(globs) > 0 {
			for _, g := range globs {
				if ok, _ := path.Match(g, rel); ok {
					out = append(out, rel)
					break
				}
			}
			return nil
		}
		if !inSnap[rel] && !objectFile(rel) {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("collect build outputs: %w", err)
	}
	return out, nil
}

// streamer follows the build output: it counts compiler invocations and
// publishes the count and the latest line for a watching client, at most a
// few times per second.
func (b *Builder) streamer(request string) (onLine func([]byte), compiled func() int) {
	var mu sync.Mutex
	var last time.Time
	n := 0
	onLine = func(line []byte) {
		mu.Lock()
		defer mu.Unlock()
		if compileLine.Match(line) {
			n++
		}
		if time.Since(last) < 200*time.Millisecond {
			return
		}
		last = time.Now()
		b.Eng.PublishBuildProgress(request, simswarm.BuildProgress{Compiled: n, Line: string(line)})
	}
	return onLine, func() int {
		mu.Lock()
		defer mu.Unlock()
		return n
	}
}

// compileLine matches the commands make echoes for compiling one source
// file, and the bare source name OMNeT++'s generated Makefiles print
// instead of the command.
var compileLine = regexp.MustCompile(`(^|\s)-c(\s|$).*\.(c|cc|cpp|cxx|C)(\s|$)|\.(c|cc|cpp|cxx)(\s.*)?\s-c(\s|$)|^[\w./+-]+\.(cc|cpp|cxx)\s*$`)

func lockFile(p string) (func(), error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// limitedBuffer keeps the first max bytes of a log; a runaway build does not
// take the builder's memory with it.
type limitedBuffer struct {
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}
