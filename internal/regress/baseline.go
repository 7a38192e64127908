// Package regress answers "did my change alter the results?": baselines
// of a campaign's scalars kept in the engine's store (or in a file a
// repository commits), and comparisons of new results with them, exact
// for deterministic single runs and by Welch's t-test over repetitions
// with Holm's correction across the scalars; statistical suites run
// several such comparisons as one campaign. See docs/regression.md.
package regress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/results"
	"github.com/simswarm/simswarm/internal/scavefilter"
)

// Format is the version of the baseline file format.
const Format = 1

// Baseline is what a campaign's results were: every scalar's values over
// the repetitions of each combination of iteration variables, with where
// they came from.
type Baseline struct {
	Format     int        `json:"format"`
	Name       string     `json:"name"`
	Created    time.Time  `json:"created"`
	Provenance Provenance `json:"provenance"`
	Filter     string     `json:"filter,omitempty"`
	Series     []Series   `json:"series"`
}

// Provenance says what produced a baseline's results.
type Provenance struct {
	Source    string   `json:"source"`               // the results directory or campaign id read
	Campaigns []string `json:"campaigns,omitempty"`  // from the results' provenance.jsonl
	Commands  []string `json:"commands,omitempty"`   // one per campaign
	Snapshots []string `json:"snapshots,omitempty"`  // of the project's sources
	Commit    string   `json:"git_commit,omitempty"` // the project's git HEAD when saved, "+dirty" when modified
	Runs      int      `json:"runs"`
}

// Series is one scalar (or one field of a statistic) of one combination
// of iteration variables: its value in each repetition.
type Series struct {
	Vars   []results.Attr `json:"vars,omitempty"`
	Module string         `json:"module"`
	Name   string         `json:"name"`
	Field  string         `json:"field,omitempty"` // a statistic's field: count, mean, stddev, min, max
	Values []float64      `json:"values"`
}

// Label is the series' name, with a statistic's field after a colon.
func (s *Series) Label() string {
	if s.Field == "" {
		return s.Name
	}
	return s.Name + "." + s.Field
}

// key identifies a series across two sets of results.
func (s *Series) key() string {
	var b strings.Builder
	for _, a := range s.Vars {
		b.WriteString(a.Name + "\x00" + a.Value + "\x00")
	}
	return b.String() + "\x01" + s.Module + "\x00" + s.Name + "\x00" + s.Field
}

// Vars as "numHosts=10,iaMean=1", as OMNeT++ names result files.
func (s *Series) VarsString() string {
	parts := make([]string, len(s.Vars))
	for i, a := range s.Vars {
		parts[i] = a.Name + "=" + a.Value
	}
	return strings.Join(parts, ",")
}

// The fields of a statistic or histogram that a baseline keeps, as
// opp_scavetool's CSV-R export names them.
var statFields = []struct {
	name string
	of   func(*results.Stats) float64
}{
	{"count", func(s *results.Stats) float64 { return float64(s.Count) }},
	{"mean", func(s *results.Stats) float64 { return s.Mean }},
	{"stddev", func(s *results.Stats) float64 { return s.Stddev }},
	{"min", func(s *results.Stats) float64 { return s.Min }},
	{"max", func(s *results.Stats) float64 { return s.Max }},
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// CheckName refuses a baseline name that could not be an object name or
// a file name everywhere.
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("invalid baseline name %q: letters, digits, '.', '_' and '-', 1 to 100 characters, starting with a letter or digit", name)
	}
	return nil
}

// ErrUnknown is wrapped by Load's error for a name the store lacks.
var ErrUnknown = errors.New("no such baseline")

// Read collects the scalars and statistics' fields of a results directory
// (through filter, opp_scavetool's syntax; "" keeps all) into a baseline.
func Read(ctx context.Context, dir, filter string) (*Baseline, error) {
	var f *scavefilter.Filter
	if filter != "" {
		var err error
		if f, err = scavefilter.Parse(filter); err != nil {
			return nil, &InputError{fmt.Errorf("invalid --filter: %w", err)}
		}
	}
	files, err := results.Find(dir, false)
	if err != nil {
		return nil, &InputError{err}
	}
	b := &Baseline{Format: Format, Filter: filter, Provenance: Provenance{Source: dir}}
	idx := map[string]int{}
	runs := map[string]bool{}
	add := func(run *results.Run, module, name, field string, v float64) {
		s := Series{Vars: run.Itervars, Module: module, Name: name, Field: field}
		k := s.key()
		i, ok := idx[k]
		if !ok {
			i = len(b.Series)
			idx[k] = i
			b.Series = append(b.Series, s)
		}
		b.Series[i].Values = append(b.Series[i].Values, v)
	}
	err = results.Walk(ctx, files, results.Options{Filter: f}, func(it *results.Item) error {
		runs[it.Run.ID] = true
		switch {
		case it.Type == results.TypeScalar:
			add(it.Run, it.Module, it.Name, "", it.Value)
		case it.Stats != nil:
			for _, fl := range statFields {
				add(it.Run, it.Module, it.Name, fl.name, fl.of(it.Stats))
			}
		}
		return nil
	})
	if err != nil {
		return nil, &InputError{fmt.Errorf("read results: %w", err)}
	}
	if len(b.Series) == 0 {
		what := "no scalars"
		if filter != "" {
			what += " match the filter"
		}
		return nil, &InputError{fmt.Errorf("%s: %s", dir, what)}
	}
	b.Provenance.Runs = len(runs)
	sort.Slice(b.Series, func(i, j int) bool { return b.Series[i].key() < b.Series[j].key() })
	if idx, err := results.LoadProvenance(dir); err == nil {
		b.Provenance.addFrom(idx)
	}
	return b, nil
}

// addFrom notes the campaigns, commands and snapshots the results'
// provenance names.
func (p *Provenance) addFrom(idx *results.ProvenanceIndex) {
	seen := map[string]bool{}
	for _, r := range idx.Records {
		if r.Campaign == "" || seen[r.Campaign] {
			continue
		}
		seen[r.Campaign] = true
		p.Campaigns = append(p.Campaigns, r.Campaign)
		p.Commands = append(p.Commands, r.Command)
		p.Snapshots = append(p.Snapshots, r.Snapshot)
	}
}

// InputError is a problem with what the user gave (a baseline name, a
// filter, a directory without results): nothing was compared.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// Encode writes a baseline as JSON, one series a line, so that a
// repository's diff of two baselines shows the scalars that changed.
func (b *Baseline) Encode() ([]byte, error) {
	var buf bytes.Buffer
	head := *b
	head.Series = nil
	h, err := json.MarshalIndent(head, "", "  ")
	if err != nil {
		return nil, err
	}
	// Replace the empty series with one line per series.
	h = bytes.TrimSuffix(h, []byte("\n}"))
	h = bytes.TrimSuffix(h, []byte(`,
  "series": null`))
	buf.Write(h)
	buf.WriteString(",\n  \"series\": [\n")
	for i, s := range b.Series {
		line, err := json.Marshal(s)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", s.Module, s.Name, err)
		}
		buf.WriteString("    ")
		buf.Write(line)
		if i < len(b.Series)-1 {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
	}
	buf.WriteString("  ]\n}\n")
	return buf.Bytes(), nil
}

// Decode reads a baseline written by Encode.
func Decode(data []byte) (*Baseline, error) {
	var b Baseline
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("not a simswarm baseline: %w", err)
	}
	if b.Format != Format {
		return nil, fmt.Errorf("baseline format %d, this simswarm reads format %d", b.Format, Format)
	}
	if err := CheckName(b.Name); err != nil {
		return nil, err
	}
	return &b, nil
}

// Save stores a baseline under its name, replacing one of that name.
func Save(ctx context.Context, eng *engine.Engine, b *Baseline) error {
	data, err := b.Encode()
	if err != nil {
		return err
	}
	return eng.PutBytes(ctx, engine.BaselineObject(b.Name), data)
}

// Load reads a stored baseline.
func Load(ctx context.Context, eng *engine.Engine, name string) (*Baseline, error) {
	if err := CheckName(name); err != nil {
		return nil, &InputError{err}
	}
	has, err := eng.HasObject(ctx, engine.BaselineObject(name))
	if err != nil {
		return nil, err
	}
	if !has {
		return nil, &InputError{fmt.Errorf("%w %q in the engine's store (simswarm baseline list shows them)", ErrUnknown, name)}
	}
	data, err := eng.GetBytes(ctx, engine.BaselineObject(name))
	if err != nil {
		return nil, fmt.Errorf("read baseline %s: %w", name, err)
	}
	b, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("baseline %s: %w", name, err)
	}
	return b, nil
}

// LoadFile reads a baseline file written by Export.
func LoadFile(path string) (*Baseline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &InputError{fmt.Errorf("baseline file: %w", err)}
	}
	b, err := Decode(data)
	if err != nil {
		return nil, &InputError{fmt.Errorf("%s: %w", path, err)}
	}
	return b, nil
}

// Stored is a baseline as a listing shows it.
type Stored struct {
	Name     string
	Size     int64
	Modified time.Time
}

// List returns the stored baselines by name.
func List(ctx context.Context, eng *engine.Engine) ([]Stored, error) {
	objs, err := eng.Objects(ctx)
	if err != nil {
		return nil, err
	}
	var out []Stored
	for _, o := range objs {
		if engine.KindOf(o.Name) == engine.KindBaseline {
			out = append(out, Stored{Name: strings.TrimPrefix(o.Name, engine.KindBaseline+"/"), Size: o.Size, Modified: o.Modified})
		}
	}
	return out, nil
}

// Remove deletes a stored baseline.
func Remove(ctx context.Context, eng *engine.Engine, name string) error {
	if _, err := Load(ctx, eng, name); err != nil {
		return err
	}
	return eng.DeleteObject(ctx, engine.BaselineObject(name))
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

// Restrict keeps the series of a baseline that a filter (opp_scavetool's
// syntax) matches by module, name, iteration variables and type (every
// series is a scalar or a statistic's field): compare applies one filter
// to both sides.
func Restrict(b *Baseline, filter string) (*Baseline, error) {
	f, err := scavefilter.Parse(filter)
	if err != nil {
		return nil, &InputError{fmt.Errorf("invalid --filter: %w", err)}
	}
	out := *b
	out.Series = nil
	for _, s := range b.Series {
		if f.Match(seriesItem{&s}) {
			out.Series = append(out.Series, s)
		}
	}
	return &out, nil
}

// seriesItem is the filter's view of a series.
type seriesItem struct{ s *Series }

func (it seriesItem) Field(name string) (string, bool) {
	switch name {
	case "module":
		return it.s.Module, true
	case "name":
		return it.s.Name, true
	case "type":
		if it.s.Field != "" {
			return results.TypeStatistic, true
		}
		return results.TypeScalar, true
	}
	if v, ok := strings.CutPrefix(name, "itervar:"); ok {
		for _, a := range it.s.Vars {
			if a.Name == v {
				return a.Value, true
			}
		}
	}
	return "", false
}

// jsonFloat writes the values JSON has no number for (OMNeT++ records a
// mean of no samples as nan) as "nan", "inf" and "-inf".
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"nan"`), nil
	case math.IsInf(v, 1):
		return []byte(`"inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-inf"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"nan"`:
		*f = jsonFloat(math.NaN())
	case `"inf"`:
		*f = jsonFloat(math.Inf(1))
	case `"-inf"`:
		*f = jsonFloat(math.Inf(-1))
	default:
		v, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return fmt.Errorf("value %s: not a number", b)
		}
		*f = jsonFloat(v)
	}
	return nil
}

type seriesJSON struct {
	Vars   []results.Attr `json:"vars,omitempty"`
	Module string         `json:"module"`
	Name   string         `json:"name"`
	Field  string         `json:"field,omitempty"`
	Values []jsonFloat    `json:"values"`
}

// MarshalJSON writes the values that JSON has no number for as strings.
func (s Series) MarshalJSON() ([]byte, error) {
	j := seriesJSON{Vars: s.Vars, Module: s.Module, Name: s.Name, Field: s.Field, Values: make([]jsonFloat, len(s.Values))}
	for i, v := range s.Values {
		j.Values[i] = jsonFloat(v)
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (s *Series) UnmarshalJSON(b []byte) error {
	var j seriesJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Series{Vars: j.Vars, Module: j.Module, Name: j.Name, Field: j.Field, Values: make([]float64, len(j.Values))}
	for i, v := range j.Values {
		s.Values[i] = float64(v)
	}
	return nil
}
