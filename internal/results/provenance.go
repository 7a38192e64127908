package results

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/atomicfile"
	"github.com/simswarm/simswarm/internal/sweep"
)

// ProvenanceFile is the name, inside a results directory, of the file that
// records where every run's results came from: one JSON object per line,
// appended by the client as runs are extracted. A later line for the same
// result file supersedes an earlier one (the run was done again).
const ProvenanceFile = "provenance.jsonl"

// Provenance is one run's record: what was run, on what, where, how it
// ended and which files it left.
type Provenance struct {
	Campaign string            `json:"campaign"`
	Run      int               `json:"run"`
	Key      string            `json:"run_key"`
	State    simswarm.RunState `json:"state"`
	Exit     int               `json:"exit"`
	Signal   string            `json:"signal,omitempty"`
	TimedOut bool              `json:"timed_out,omitempty"`
	Artifact string            `json:"artifact"`
	Snapshot string            `json:"snapshot"`
	Command  string            `json:"command"` // the command line that repeats the run, shell-quoted
	Workdir  string            `json:"workdir,omitempty"`
	Vars     []Attr            `json:"vars,omitempty"` // iteration variables, repetition last
	Host     string            `json:"host,omitempty"`
	Worker   string            `json:"worker,omitempty"`
	Wall     float64           `json:"wall_seconds"`
	CPU      float64           `json:"cpu_seconds"`
	Reused   bool              `json:"reused,omitempty"`
	Version  string            `json:"simswarm_version"`
	Started  string            `json:"started,omitempty"`
	Finished string            `json:"finished,omitempty"`
	Files    []string          `json:"files"`
}

// MarshalJSON for Attr keeps provenance lines short: {"name":..,"value":..}.
func (a Attr) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}{a.Name, a.Value})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (a *Attr) UnmarshalJSON(b []byte) error {
	var v struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	a.Name, a.Value = v.Name, v.Value
	return nil
}

// ProvenanceOf builds a run's provenance from its campaign and record. vars
// is the run's iteration variables as the run list printed them
// ("$numHosts=10, $iaMean=1, $repetition=0"), possibly empty.
func ProvenanceOf(camp *simswarm.Campaign, rec *simswarm.RunRecord, vars string) Provenance {
	p := Provenance{Campaign: camp.ID, Run: rec.Run, Key: rec.Key, State: rec.State, Exit: rec.Exit, Signal: rec.Signal,
		TimedOut: rec.TimedOut, Artifact: camp.Artifact, Snapshot: camp.Snapshot, Workdir: camp.Workdir,
		Command: commandLine(camp.Command, rec.Run), Vars: parseVars(vars), Host: rec.Host, Worker: rec.Worker,
		Wall: rec.Wall.Seconds(), CPU: rec.CPU.Seconds(), Reused: rec.Reused, Version: simswarm.Version, Files: []string{}}
	if camp.Command.Kind == simswarm.KindTemplate && len(p.Vars) == 0 {
		for _, kv := range sweep.Values(camp.Command, rec.Run) {
			p.Vars = append(p.Vars, Attr{kv[0], kv[1]})
		}
	}
	if !rec.Started.IsZero() {
		p.Started = rec.Started.UTC().Format(time.RFC3339Nano)
	}
	if !rec.Finished.IsZero() {
		p.Finished = rec.Finished.UTC().Format(time.RFC3339Nano)
	}
	for _, f := range rec.Files {
		p.Files = append(p.Files, f.Name)
	}
	return p
}

// commandLine is the command that runs this one run again by hand.
func commandLine(c simswarm.Command, run int) string {
	if c.Kind == simswarm.KindTemplate {
		s, err := sweep.Expand(c, run, "results")
		if err != nil {
			return ""
		}
		return s
	}
	parts := make([]string, 0, len(c.Argv)+4)
	for _, a := range c.Argv {
		parts = append(parts, sweep.Quote(a))
	}
	parts = append(parts, "-s", "-r", strconv.Itoa(run), "--result-dir=results")
	return strings.Join(parts, " ")
}

// parseVars reads "$a=1, $b=x, $repetition=0" as OMNeT++ prints a run's
// variables (values may themselves hold ", " only when quoted, which
// OMNeT++ does not do, so splitting on ", $" is safe).
func parseVars(s string) []Attr {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	var out []Attr
	for _, part := range strings.Split(s, ", $") {
		part = strings.TrimPrefix(part, "$")
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		out = append(out, Attr{name, val})
	}
	return out
}

// seenKey tells records apart: a run's outcome, under the names its files
// have (a run renumbered when its campaign grew is recorded again).
func (p *Provenance) seenKey() string {
	first := ""
	if len(p.Files) > 0 {
		first = p.Files[0]
	}
	return p.Key + "|" + p.Finished + "|" + first
}

// ProvenanceLog appends records to a results directory's provenance file,
// once per (run key, finish time).
type ProvenanceLog struct {
	mu      sync.Mutex
	path    string
	seen    map[string]bool
	skipped []int
}

// OpenProvenance opens the provenance file of a results directory,
// remembering which records it already holds.
func OpenProvenance(dir string) *ProvenanceLog {
	l := &ProvenanceLog{path: filepath.Join(dir, ProvenanceFile), seen: map[string]bool{}}
	l.skipped, _ = eachProvenance(l.path, func(p *Provenance, _ int) error {
		l.seen[p.seenKey()] = true
		return nil
	})
	return l
}

// Skipped is the lines of the file that held no whole record when it was
// opened (a write cut short by a full disk or a crash).
func (l *ProvenanceLog) Skipped() []int { return l.skipped }

// Add appends a record unless the file already holds it. The file only
// ever grows by whole lines: a torn last line (left by a crash) is cut off
// before the append, and an append that fails part way (ENOSPC) is cut
// back, so the file keeps its last complete state and every later record
// starts on a line of its own.
func (l *ProvenanceLog) Add(p Provenance) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := p.seenKey()
	if l.seen[k] {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := atomicfile.AppendLine(l.path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("provenance: %w", err)
	}
	l.seen[k] = true
	return nil
}

// eachProvenance calls fn for every record of the file. Lines that hold no
// whole record (a write cut short: a full disk, a crash, or an older
// simswarm that appended after such a line) are skipped and their numbers
// returned, so that one torn write costs its record, not the file.
func eachProvenance(path string, fn func(*Provenance, int) error) (skipped []int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var p Provenance
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			skipped = append(skipped, n)
			continue
		}
		if err := fn(&p, n); err != nil {
			return skipped, err
		}
	}
	if err := sc.Err(); err != nil {
		return skipped, &FileError{File: path, Line: n + 1, Msg: err.Error()}
	}
	return skipped, nil
}

// SkippedNote says once which lines of a provenance file were skipped.
func SkippedNote(path string, lines []int) string {
	if len(lines) == 0 {
		return ""
	}
	nums := make([]string, 0, 5)
	for i, n := range lines {
		if i == 5 {
			nums = append(nums, "...")
			break
		}
		nums = append(nums, strconv.Itoa(n))
	}
	what := "a torn record"
	if len(lines) > 1 {
		what = strconv.Itoa(len(lines)) + " torn records"
	}
	return fmt.Sprintf("%s: skipped %s (line %s: a write cut short by a full disk or a crash); the runs they described are known by their files alone", path, what, strings.Join(nums, ", "))
}

// ProvenanceIndex finds the provenance of a result file.
type ProvenanceIndex struct {
	dir    string
	byFile map[string]*Provenance
	byKey  map[string]int // into Records
	// Records is every record, last per run key, in file order.
	Records []*Provenance
	// Note says which lines held no whole record, if any ("" otherwise).
	Note string
}

// LoadProvenance reads the provenance file of a results directory.
func LoadProvenance(dir string) (*ProvenanceIndex, error) {
	byKey := map[string]int{}
	idx := &ProvenanceIndex{dir: dir, byFile: map[string]*Provenance{}, byKey: byKey}
	path := filepath.Join(dir, ProvenanceFile)
	skipped, err := eachProvenance(path, func(p *Provenance, _ int) error {
		for _, f := range p.Files {
			idx.byFile[f] = p
		}
		if i, ok := byKey[p.Key]; ok {
			idx.Records[i] = p
		} else {
			byKey[p.Key] = len(idx.Records)
			idx.Records = append(idx.Records, p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no provenance records (%s is written by simswarm run as runs finish)", dir, ProvenanceFile)
	}
	if err != nil {
		return nil, err
	}
	idx.Note = SkippedNote(path, skipped)
	return idx, nil
}

// Holds reports whether the directory holds what the run with this key
// left there: its last record succeeded, and every file it wrote is still
// there and was not written since by another run. A run done here is done,
// whatever other directory a later campaign of the same runs wrote into.
func (x *ProvenanceIndex) Holds(key string) bool {
	if x == nil {
		return false
	}
	i, ok := x.byKey[key]
	if !ok {
		return false
	}
	p := x.Records[i]
	if p.State != simswarm.RunSucceeded || len(p.Files) == 0 {
		return false
	}
	for _, f := range p.Files {
		if x.byFile[f] != p {
			return false
		}
		if fi, err := os.Stat(filepath.Join(x.dir, filepath.FromSlash(f))); err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// Lookup returns the provenance of a result file (its path as found under
// the directory), or nil.
func (x *ProvenanceIndex) Lookup(file string) *Provenance {
	if x == nil {
		return nil
	}
	rel, err := filepath.Rel(x.dir, file)
	if err != nil {
		return nil
	}
	return x.byFile[filepath.ToSlash(rel)]
}

// Owner returns the provenance of the run that wrote a file last, by its
// name relative to the directory, or nil.
func (x *ProvenanceIndex) Owner(name string) *Provenance {
	if x == nil {
		return nil
	}
	return x.byFile[name]
}

func provenanceColumns() []column {
	s := func(f func(*Provenance) string) func(*row) cell {
		return func(r *row) cell {
			if r.prov == nil {
				return cell{}
			}
			return str(f(r.prov))
		}
	}
	n := func(f func(*Provenance) float64) func(*row) cell {
		return func(r *row) cell {
			if r.prov == nil {
				return cell{}
			}
			return num(f(r.prov))
		}
	}
	return []column{
		{"campaign", cString, s(func(p *Provenance) string { return p.Campaign })},
		{"runnumber", cInt, func(r *row) cell {
			if r.prov == nil {
				return cell{}
			}
			return cell{kind: kInt, i: int64(r.prov.Run)}
		}},
		{"run_key", cString, s(func(p *Provenance) string { return p.Key })},
		{"artifact", cString, s(func(p *Provenance) string { return p.Artifact })},
		{"snapshot", cString, s(func(p *Provenance) string { return p.Snapshot })},
		{"command", cString, s(func(p *Provenance) string { return p.Command })},
		{"host", cString, s(func(p *Provenance) string { return p.Host })},
		{"wall_seconds", cFloat, n(func(p *Provenance) float64 { return p.Wall })},
		{"cpu_seconds", cFloat, n(func(p *Provenance) float64 { return p.CPU })},
		{"exit", cInt, func(r *row) cell {
			if r.prov == nil {
				return cell{}
			}
			return cell{kind: kInt, i: int64(r.prov.Exit)}
		}},
		{"simswarm_version", cString, s(func(p *Provenance) string { return p.Version })},
		{"started", cString, s(func(p *Provenance) string { return p.Started })},
		{"finished", cString, s(func(p *Provenance) string { return p.Finished })},
	}
}
