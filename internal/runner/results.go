package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/archive"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/omnetpp"
	"github.com/simswarm/simswarm/internal/proc"
	"github.com/simswarm/simswarm/internal/safedir"
)

// inlineLimit is the size up to which a run's files travel inside its record
// rather than as an object: one write instead of several for the many small
// .sca files of a typical campaign.
const inlineLimit = 256 << 10

// collect gathers the result files of a single-run process: everything in
// its result directory is its own.
func (r *Runner) collect(ctx context.Context, j *job, stage *safedir.Stage, console string, from, to int64, rec *simswarm.RunRecord) {
	resDir := filepath.Join(stage.Path(), "results")
	var files []string
	_ = filepath.WalkDir(resDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(resDir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	r.collectFiles(ctx, j, stage, files, console, from, to, rec)
}

// collectFiles stores a run's files and its console output (as opp_runall
// keeps a .out per run) and notes them in the record. to < 0 takes the
// console output whole.
func (r *Runner) collectFiles(ctx context.Context, j *job, stage *safedir.Stage, files []string, console string, from, to int64, rec *simswarm.RunRecord) {
	resDir := filepath.Join(stage.Path(), "results")
	out := outName(j.Command, j.Run, files)
	if err := copyRange(console, filepath.Join(resDir, filepath.FromSlash(out)), from, to); err != nil {
		if safedir.IsDiskFull(err) {
			// A run without its output is not a success to keep.
			rec.State = simswarm.RunFailed
			rec.Reason = fmt.Sprintf("keeping the console output in %s: %v", r.writesInto(j), safedir.ErrDiskFull)
			return
		}
		r.Log.Warn("runner: keep console output", "run", j.Run, "err", err)
	} else {
		files = append(files, out)
	}
	if err := r.store(ctx, j, stage, files, rec); err != nil {
		rec.State = simswarm.RunFailed
		rec.Reason = "storing results: " + err.Error()
		// Nothing of them is stored: the record must not promise any.
		rec.Object, rec.Files = "", nil
	}
}

func (r *Runner) store(ctx context.Context, j *job, stage *safedir.Stage, files []string, rec *simswarm.RunRecord) error {
	resDir := filepath.Join(stage.Path(), "results")
	var total int64
	rec.Files = rec.Files[:0]
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(resDir, filepath.FromSlash(f)))
		if err != nil {
			return err
		}
		rec.Files = append(rec.Files, simswarm.File{Name: f, Size: fi.Size()})
		total += fi.Size()
	}
	switch {
	case r.local(j):
		// The stage lies inside j.Local: the run's files land by rename,
		// together, through safedir like every file a run writes there.
		for _, f := range rec.Files {
			if err := stage.Adopt("results/"+f.Name, f.Name); err != nil {
				return err
			}
		}
		if err := stage.CommitFor(j.Campaign, j.Run); err != nil {
			var claimed *safedir.ClaimError
			if errors.As(err, &claimed) {
				return err
			}
			return fmt.Errorf("move results into %s: %w", j.Local, err)
		}
		rec.LocalDir = j.Local
	case total <= inlineLimit:
		for i := range rec.Files {
			b, err := os.ReadFile(filepath.Join(resDir, filepath.FromSlash(rec.Files[i].Name)))
			if err != nil {
				return err
			}
			rec.Files[i].Data = b
		}
	default:
		pr, pw := io.Pipe()
		go func() {
			_, err := archive.Pack(pw, resDir, files)
			pw.CloseWithError(err)
		}()
		rec.Object = engine.ResultObject(j.Key)
		if err := r.Eng.PutObject(ctx, rec.Object, pr); err != nil {
			pr.CloseWithError(err)
			return err
		}
	}
	return nil
}

// copyRange copies bytes [from,to) of src into a new file dst (to < 0: to
// the end). Whole files are moved instead of copied.
func copyRange(src, dst string, from, to int64) error {
	if from == 0 && to < 0 {
		return os.Rename(src, dst)
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := in.Seek(from, io.SeekStart); err != nil {
		out.Close()
		return err
	}
	var r io.Reader = in
	if to >= 0 {
		r = io.LimitReader(in, to-from)
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// settled is a run of a batch whose outcome is clear.
type settled struct {
	job      *job
	rec      *simswarm.RunRecord
	from, to int64 // its part of the console
}

// settleBatch decides each run of a multi-run process. A run the process
// completed and moved past is done; the run it stopped in, and any it never
// reached, run again alone, because in OMNeT++ one failed run can make the
// following runs of the same process fail for that reason alone.
func (r *Runner) settleBatch(jobs []*job, res *proc.Result, seen []omnetpp.BatchRun, heads []time.Time, console string, started time.Time) (retry []*job, done []settled) {
	byRun := map[int]*job{}
	for _, j := range jobs {
		byRun[j.Run] = j
	}
	end := started.Add(res.Wall)
	for i, h := range seen {
		j, ok := byRun[h.Run]
		if !ok {
			continue
		}
		last := i == len(seen)-1
		runEnd := end
		if !last {
			runEnd = heads[i+1]
		}
		wall := runEnd.Sub(heads[i])
		// The process's CPU, start-up included, is shared by the runs'
		// walls, so that a campaign's runs add up to its processes.
		cpu := time.Duration(0)
		if span := end.Sub(heads[0]); span > 0 {
			cpu = time.Duration(float64(res.CPU) * float64(wall) / float64(span))
		}
		part := readRange(console, h.Start, h.End, 1<<20)
		delete(byRun, h.Run)
		if res.Failed() && (last || len(omnetpp.ErrorLines(part, 1)) > 0) {
			retry = append(retry, j)
			continue
		}
		rec := r.outcomeOf(part, &proc.Result{Exit: 0, Wall: wall, CPU: cpu}, heads[i])
		rec.Batch = len(jobs)
		done = append(done, settled{job: j, rec: rec, from: h.Start, to: h.End})
	}
	for _, j := range jobs {
		if _, left := byRun[j.Run]; left {
			retry = append(retry, j)
		}
	}
	sort.Slice(retry, func(a, b int) bool { return retry[a].Run < retry[b].Run })
	if len(retry) > 0 {
		r.stats.noBatch(jobs[0].BatchKey())
	}
	return retry, done
}

// attribute assigns result files of a batch to runs by the run number in
// their header; files that carry none go with the files sharing their name
// prefix, else to the first run.
func attribute(resDir string, seen []omnetpp.BatchRun) map[int][]string {
	owners := map[int][]string{}
	byPrefix := map[string]int{}
	var unknown []string
	_ = filepath.WalkDir(resDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(resDir, p)
		f, err := os.Open(p)
		if err != nil {
			return nil
		}
		n, ok := omnetpp.ResultRunNumber(f)
		f.Close()
		if ok {
			owners[n] = append(owners[n], rel)
			byPrefix[prefix(rel)] = n
		} else {
			unknown = append(unknown, rel)
		}
		return nil
	})
	for _, rel := range unknown {
		n, ok := byPrefix[prefix(rel)]
		if !ok && len(seen) > 0 {
			n = seen[0].Run
		}
		owners[n] = append(owners[n], rel)
	}
	return owners
}

func prefix(name string) string {
	return strings.TrimSuffix(name, filepath.Ext(name))
}

// outName names a run's console output file as opp_runall's .out files are
// named: after the run's result files, else after the config and run.
func outName(c simswarm.Command, run int, files []string) string {
	pre := ""
files:
	for _, f := range files {
		switch filepath.Ext(f) {
		case ".sca", ".vec", ".vci", ".elog":
			p := prefix(f)
			if pre != "" && p != pre {
				pre = "" // result files of two names: name by the run
				break files
			}
			pre = p
		}
	}
	if pre != "" {
		return pre + ".out"
	}
	if c.Kind == simswarm.KindOmnetpp {
		return omnetpp.ConfigName(c.Argv) + "-#" + strconv.Itoa(run) + ".out"
	}
	return "run-#" + strconv.Itoa(run) + ".out"
}

func readRange(path string, from, to int64, max int64) []byte {
	if to-from > max {
		from = to - max
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	b := make([]byte, to-from)
	n, _ := f.ReadAt(b, from)
	return b[:n]
}
