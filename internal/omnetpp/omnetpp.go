// Package omnetpp knows the command-line and console conventions of OMNeT++
// simulation programs (opp_run, project executables, INET's launcher), as
// observed with OMNeT++ 6.1 and INET 4.5: how to read the run list out of
// `-q runnumbers` and `-q runs`, how to tell real errors from the `<!>` status
// lines a healthy run prints, how to cut the console output of a process that
// ran several runs into per-run parts, how to find and replace the -r and -c
// options in an argument list, and how to read the run number out of a result
// file's header.
//
// Everything here is pure parsing: no process is started and no file is
// opened, so callers decide what a missing or empty answer means.
package omnetpp

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxTokenInError bounds how much of an unexpected token an error repeats,
// so that a binary blob on stdout still gives a one-line message.
const maxTokenInError = 40

// maxErrorLine bounds each line ErrorLines returns; errors end up in stored
// run records, and a simulation can print arbitrarily long messages.
const maxErrorLine = 1000

// ParseRunNumbers parses the stdout of `<prog> <args> [-s] -q runnumbers`.
//
// With -s OMNeT++ prints only the numbers (" 0 1 2 ... 41"). Without -s a
// banner comes first and the numbers are on a "Run numbers: 0 1 2" line; when
// such a line is present only it is read, so the banner does not matter.
// Any other token is an error naming it, so that garbage on stdout (a library
// printing at load time, the wrong program) is reported rather than guessed
// around. Empty output gives an empty slice and no error: whether zero runs is
// acceptable is the caller's call. A run number listed twice is an error,
// since it would make the run list ambiguous.
func ParseRunNumbers(stdout []byte) ([]int, error) {
	var fields []string
	banner := false
	for _, line := range strings.Split(string(stdout), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Run numbers:"); ok {
			banner = true
			fields = append(fields, strings.Fields(rest)...)
		}
	}
	if !banner {
		fields = strings.Fields(string(stdout))
	}

	runs := make([]int, 0, len(fields))
	seen := make(map[int]bool, len(fields))
	for _, tok := range fields {
		n, err := parseRunNumber(tok)
		if err != nil {
			return nil, fmt.Errorf("run number list: %w", err)
		}
		if seen[n] {
			return nil, fmt.Errorf("run number list: run %d listed twice", n)
		}
		seen[n] = true
		runs = append(runs, n)
	}
	return runs, nil
}

// PlainRunNumbers reads a run filter made of run numbers only ("3",
// "0,5,7"), which selects those runs without asking the program; ok is
// false for anything else (ranges, expressions). Numbers come sorted, each
// once.
func PlainRunNumbers(filter string) (runs []int, ok bool) {
	seen := map[int]bool{}
	for _, tok := range strings.Split(filter, ",") {
		n, err := parseRunNumber(strings.TrimSpace(tok))
		if err != nil {
			return nil, false
		}
		if !seen[n] {
			seen[n] = true
			runs = append(runs, n)
		}
	}
	sort.Ints(runs)
	return runs, true
}

// parseRunNumber accepts only plain decimal digits: strconv.Atoi alone would
// also take "+3" and "-0", which OMNeT++ never prints.
func parseRunNumber(tok string) (int, error) {
	if tok == "" {
		return 0, fmt.Errorf("empty run number")
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < '0' || tok[i] > '9' {
			return 0, fmt.Errorf("unexpected %s (not a non-negative integer)", quoteToken(tok))
		}
	}
	n, err := strconv.Atoi(tok)
	if err != nil {
		return 0, fmt.Errorf("run number %s is out of range", quoteToken(tok))
	}
	return n, nil
}

// quoteToken quotes tok for an error message, cutting it at a rune boundary
// so the message stays short and valid UTF-8.
func quoteToken(tok string) string {
	if utf8.RuneCountInString(tok) <= maxTokenInError {
		return strconv.Quote(tok)
	}
	n := 0
	for i := range tok {
		if n == maxTokenInError {
			return strconv.Quote(tok[:i]) + "..."
		}
		n++
	}
	return strconv.Quote(tok)
}

// RunInfo is one line of `-q runs` output.
type RunInfo struct {
	Number int
	Vars   string // iteration variables as printed, e.g. `$numHosts=10, $iaMean=1, $repetition=0`
}

// ParseRuns parses `-s -q runs` output: "Run 0: $numHosts=10, ..." lines.
// Other lines (the banner without -s, blank lines) are ignored. A run number
// that appears twice or does not fit an int is an error.
func ParseRuns(stdout []byte) ([]RunInfo, error) {
	var runs []RunInfo
	seen := make(map[int]bool)
	for _, line := range strings.Split(string(stdout), "\n") {
		line = strings.TrimRight(line, " \t\r")
		rest, ok := strings.CutPrefix(line, "Run ")
		if !ok {
			continue
		}
		num, vars, ok := strings.Cut(rest, ":")
		if !ok || num == "" || strings.Trim(num, "0123456789") != "" {
			continue
		}
		if vars != "" && vars[0] != ' ' {
			continue
		}
		n, err := parseRunNumber(num)
		if err != nil {
			return nil, fmt.Errorf("run list: %w", err)
		}
		if seen[n] {
			return nil, fmt.Errorf("run list: run %d listed twice", n)
		}
		seen[n] = true
		runs = append(runs, RunInfo{Number: n, Vars: strings.TrimSpace(vars)})
	}
	return runs, nil
}

// statusMarker starts every Cmdenv status and error line.
const statusMarker = "<!>"

// statusText returns the text after "<!> " on line, if line carries one.
// The marker is looked for anywhere in the line, not only at its start:
// when stdout and stderr share one pipe, an error can land after an
// unterminated progress line.
func statusText(line string) (string, bool) {
	i := strings.Index(line, statusMarker+" ")
	if i < 0 {
		return "", false
	}
	return strings.TrimSpace(line[i+len(statusMarker):]), true
}

// isError reports whether status text (after "<!> ") is an error. OMNeT++ 6
// prints "Error: ..."; the "Error in module ..." form is from older releases.
func isError(text string) bool {
	rest, ok := strings.CutPrefix(text, "Error")
	return ok && (strings.HasPrefix(rest, ":") || strings.HasPrefix(rest, " "))
}

// ErrorLines returns the `<!> Error: ...` lines of a run's output, trimmed,
// in order, each cut to 1000 bytes. Other `<!>` lines (time limits,
// fingerprint verdicts) are not errors: a healthy run prints them.
// max limits how many lines are returned; as with strings.SplitN, max < 0
// means no limit and max == 0 returns nil.
func ErrorLines(output []byte, max int) []string {
	if max == 0 {
		return nil
	}
	var errs []string
	for _, line := range strings.Split(string(output), "\n") {
		text, ok := statusText(line)
		if !ok || !isError(text) {
			continue
		}
		errs = append(errs, truncate(statusMarker+" "+text, maxErrorLine))
		if max > 0 && len(errs) == max {
			break
		}
	}
	return errs
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// Outcome is what a run's `<!>` status lines say about how it ended.
type Outcome struct {
	// Fingerprint is "" (no check), "verified" or "mismatch". A mismatch
	// still exits 0, so only this tells it apart from success.
	Fingerprint           string
	FingerprintCalculated string
	FingerprintExpected   string
	// Limit names the limit that ended the run: "sim-time", "cpu-time",
	// "real-time" (not seen in captured output, but printed the same way),
	// or "" when the run ended otherwise.
	Limit   string
	SimTime string // simulation time at the end, as printed, e.g. "600s"
	Events  int64  // event number at the end
}

// limitKinds maps the start of a termination message to Outcome.Limit.
var limitKinds = []struct{ prefix, limit string }{
	{"Simulation time limit reached", "sim-time"},
	{"CPU time limit reached", "cpu-time"},
	{"Real time limit reached", "real-time"},
}

// ParseOutcome reads the `<!>` status lines of one run's output. When a line
// kind occurs more than once (a batch's output), the last one wins; split a
// batch with SplitBatchOutput first to get each run's own outcome.
func ParseOutcome(output []byte) Outcome {
	var o Outcome
	for _, line := range strings.Split(string(output), "\n") {
		text, ok := statusText(line)
		if !ok || isError(text) {
			continue
		}
		if v, ok := strings.CutPrefix(text, "Fingerprint successfully verified:"); ok {
			v = strings.TrimSpace(v)
			o.Fingerprint, o.FingerprintCalculated, o.FingerprintExpected = "verified", v, v
			continue
		}
		if v, ok := strings.CutPrefix(text, "Fingerprint mismatch!"); ok {
			calc, exp, _ := strings.Cut(strings.TrimSpace(v), ", expected:")
			calc, _ = strings.CutPrefix(calc, "calculated:")
			o.Fingerprint = "mismatch"
			o.FingerprintCalculated, o.FingerprintExpected = strings.TrimSpace(calc), strings.TrimSpace(exp)
			continue
		}
		// Every way a simulation terminates ("... limit reached", "No more
		// events", endSimulation()) ends with "-- at t=T, event #N".
		msg, where, ok := strings.Cut(text, " -- at t=")
		if !ok {
			continue
		}
		t, ev, ok := strings.Cut(where, ", event #")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(ev), 10, 64)
		if err != nil {
			continue
		}
		o.SimTime, o.Events, o.Limit = strings.TrimSpace(t), n, ""
		for _, k := range limitKinds {
			if strings.HasPrefix(msg, k.prefix) {
				o.Limit = k.limit
				break
			}
		}
	}
	return o
}

// SplitBatchOutput splits the console output of one process that ran several
// runs (`-s -r 3,4,5`) into each run's part. A part starts at its run's
// header line: "<Config> run <N>: <vars>" with -s, "Preparing for running
// configuration <Config>, run #<N>..." without. Text before the first header
// (the banner) goes to the first run. Runs that never started have no header
// and are absent. order lists the runs in the order they appear, and the
// parts in that order concatenate back to output exactly.
//
// A process runs a single config, so a header-like line naming another
// config, or a run already seen, is taken as the run's own output rather
// than a new run. Output without any header gives an empty map. The parts
// share output's memory, with capacity capped so appending to one copies.
func SplitBatchOutput(output []byte) (parts map[int][]byte, order []int) {
	var sp BatchSplitter
	_, _ = sp.Write(output)
	sp.Flush()
	parts = make(map[int][]byte)
	for _, r := range sp.Runs() {
		parts[r.Run] = output[r.Start:r.End:r.End]
		order = append(order, r.Run)
	}
	return parts, order
}

// BatchSplitter does what SplitBatchOutput does while the output is being
// written, without keeping it: it notes where each run's part begins, so a
// runner can stream a process's console to a file and cut it afterwards,
// and learn when each run began (OnRun).
type BatchSplitter struct {
	// OnRun, when set, is called as each run's header is seen.
	OnRun func(run int)

	mu        sync.Mutex
	total     int64
	line      []byte // the start of the current line: headers are short
	lineStart int64
	inLine    bool
	config    string
	seen      map[int]bool
	runs      []BatchRun
}

// BatchRun is one run's part of a batch's output: bytes [Start, End).
type BatchRun struct {
	Run        int
	Start, End int64
}

// maxHeader bounds how much of a line is kept to recognise a header.
const maxHeader = 1024

// Write takes the next bytes of the output.
func (s *BatchSplitter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		if !s.inLine {
			s.lineStart, s.inLine = s.total, true
		}
		chunk := p
		nl := bytes.IndexByte(p, '\n')
		if nl >= 0 {
			chunk = p[:nl+1]
		}
		if room := maxHeader - len(s.line); room > 0 {
			s.line = append(s.line, chunk[:min(room, len(chunk))]...)
		}
		s.total += int64(len(chunk))
		p = p[len(chunk):]
		if nl >= 0 {
			s.endLine()
		}
	}
	return n, nil
}

// Flush takes a last line that has no newline (the process ended).
func (s *BatchSplitter) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inLine {
		s.endLine()
	}
}

func (s *BatchSplitter) endLine() {
	cfg, n, ok := BatchHeader(s.line)
	// A process runs one config: a header-like line naming another, or a
	// run already seen, is the run's own output.
	if ok && (s.config == "" || cfg == s.config) && !s.seen[n] {
		if s.seen == nil {
			s.seen = map[int]bool{}
		}
		s.seen[n], s.config = true, cfg
		start := s.lineStart
		if len(s.runs) == 0 {
			start = 0 // the banner goes with the first run
		} else {
			s.runs[len(s.runs)-1].End = start
		}
		s.runs = append(s.runs, BatchRun{Run: n, Start: start})
		if s.OnRun != nil {
			s.OnRun(n)
		}
	}
	s.line, s.inLine = s.line[:0], false
}

// Runs lists the runs seen so far in output order; the last part ends
// where the output written so far ends.
func (s *BatchSplitter) Runs() []BatchRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]BatchRun(nil), s.runs...)
	if len(out) > 0 {
		out[len(out)-1].End = s.total
	}
	return out
}

// Len is how many bytes were written.
func (s *BatchSplitter) Len() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// BatchHeader recognises the line Cmdenv prints when it starts a run.
func BatchHeader(line []byte) (config string, run int, ok bool) {
	s := strings.TrimRight(string(line), "\r\n")
	if rest, found := strings.CutPrefix(s, "Preparing for running configuration "); found {
		cfg, num, found := strings.Cut(rest, ", run #")
		if !found || cfg == "" {
			return "", 0, false
		}
		num, found = strings.CutSuffix(num, "...")
		if !found {
			return "", 0, false
		}
		n, err := parseRunNumber(num)
		if err != nil {
			return "", 0, false
		}
		return cfg, n, true
	}
	// "<Config> run <N>:" optionally followed by " <vars>"; config names
	// have no spaces, so the first space ends the name.
	cfg, rest, found := strings.Cut(s, " run ")
	if !found || cfg == "" || strings.ContainsAny(cfg, " \t") {
		return "", 0, false
	}
	num, vars, found := strings.Cut(rest, ":")
	if !found || (vars != "" && vars[0] != ' ') {
		return "", 0, false
	}
	n, err := parseRunNumber(num)
	if err != nil {
		return "", 0, false
	}
	return cfg, n, true
}
