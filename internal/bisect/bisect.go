// Package bisect finds the first commit between a good and a bad one
// that fails a test, testing many commits of the range at once: with S
// slots a round tests S commits spread over the commits still in doubt,
// so a range of n commits takes about log base S+1 of n rounds, not log
// base 2. Each commit is checked out into a worktree of its own beside the
// user's checkout (never in it); tests that run on the engine (a
// comparison with a baseline, a fingerprint suite) build each commit by
// its content, so a commit built once, in any bisect, is not built again.
// See docs/regression.md.
package bisect

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/atomicfile"
	"github.com/simswarm/simswarm/internal/gitrepo"
)

// State is what a test said of a commit.
type State int

// States of a commit.
const (
	Untested State = iota
	Good
	Bad
	// Skip is a commit the test cannot judge (it does not build; a
	// command exited 125, as git bisect run has it).
	Skip
)

func (s State) String() string {
	return [...]string{"untested", "good", "bad", "skip"}[s]
}

// Tree is one commit checked out for a test.
type Tree struct {
	Commit string
	Root   string // the worktree's top directory
}

// Result is a test's verdict on one commit.
type Result struct {
	State  State
	Detail string // one line: why
	// Report is the test's full verdict on a bad commit (a comparison's
	// changed scalars, a suite's failing tests), printed for the first bad.
	Report string
}

// Tester tests commits, all of one round at once.
type Tester interface {
	Test(ctx context.Context, trees []Tree) ([]Result, error)
	// Describe names the test in a line.
	Describe() string
}

// InputError is a problem with what the user asked (revisions, the work
// tree, a commit that cannot be tested at an end of the range): nothing
// was bisected.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func inputErr(format string, a ...any) error { return &InputError{fmt.Errorf(format, a...)} }

// Options of a bisect.
type Options struct {
	Repo      *gitrepo.Repo
	Good, Bad string // revisions as the user gave them
	// Slots is how many commits of the range a round tests at once.
	Slots int
	// Dir holds the worktrees and what tests keep between bisects of the
	// same repository (results), and the round times --dry-run uses.
	Dir    string
	Tester Tester
	Out    io.Writer
	// Builds lists the builds the engine holds, each by when it finished
	// (nil: a test that does not build); a bisect reports how many builds
	// it made, new or done again.
	Builds func(context.Context) (map[string]time.Time, error)
}

// Range is the commits a bisect chooses from.
type Range struct {
	Good    string
	Commits []string // after Good, oldest first; the last is Bad
}

// Prepare checks what the user asked and returns the range: both
// revisions name commits, GOOD is an ancestor of BAD and not BAD itself,
// and the user's work tree has no uncommitted changes to tracked files
// (a bisect tests commits; changes not in one would be ignored silently).
func Prepare(ctx context.Context, o Options) (*Range, error) {
	if o.Slots < 1 {
		return nil, inputErr("a bisect needs at least one slot")
	}
	dirty, err := o.Repo.Dirty(ctx)
	if err != nil {
		return nil, err
	}
	if len(dirty) > 0 {
		more := ""
		if len(dirty) > 3 {
			dirty, more = dirty[:3], fmt.Sprintf(" and %d more", len(dirty)-3)
		}
		return nil, inputErr("the work tree %s has uncommitted changes (%s%s): commit or stash them, a bisect tests commits", o.Repo.Root, strings.Join(dirty, ", "), more)
	}
	good, err := o.Repo.Resolve(ctx, o.Good)
	if err != nil {
		return nil, inputErr("GOOD: %v", err)
	}
	bad, err := o.Repo.Resolve(ctx, o.Bad)
	if err != nil {
		return nil, inputErr("BAD: %v", err)
	}
	if good == bad {
		return nil, inputErr("GOOD and BAD are the same commit %s: nothing to bisect", short(good))
	}
	anc, err := o.Repo.IsAncestor(ctx, good, bad)
	if err != nil {
		return nil, err
	}
	if !anc {
		return nil, inputErr("GOOD %s (%s) is not an ancestor of BAD %s (%s): give an older GOOD", o.Good, short(good), o.Bad, short(bad))
	}
	path, err := o.Repo.Path(ctx, good, bad)
	if err != nil {
		return nil, err
	}
	if len(path) == 0 || path[len(path)-1] != bad {
		return nil, inputErr("no first-parent path from GOOD %s to BAD %s", short(good), short(bad))
	}
	return &Range{Good: good, Commits: path}, nil
}

// pick chooses up to slots commits to test next: spread evenly over the
// commits still in doubt (after the last good, before the first bad,
// neither tested nor skipped), so that each part left between two of
// them is as small as possible. idx are indices into states, where 0 is
// GOOD and len-1 is BAD.
func pick(states []State, slots int) []int {
	lo, hi := bounds(states)
	var doubt []int
	for i := lo + 1; i < hi; i++ {
		if states[i] == Untested {
			doubt = append(doubt, i)
		}
	}
	k := min(slots, len(doubt))
	out := make([]int, 0, k)
	for j := 0; j < k; j++ {
		out = append(out, doubt[(j+1)*len(doubt)/(k+1)])
	}
	return out
}

// bounds are the last good commit before the first bad one, and that
// first bad one.
func bounds(states []State) (lo, hi int) {
	hi = len(states) - 1
	for i, s := range states {
		if s == Bad {
			hi = i
			break
		}
	}
	for i := 0; i < hi; i++ {
		if states[i] == Good {
			lo = i
		}
	}
	return lo, hi
}

// Rounds is how many rounds a bisect of n commits after GOOD takes with
// the given slots at most (the first bad one anywhere).
func Rounds(n, slots int) int {
	// Each round cuts the doubtful commits into slots+1 parts.
	doubt, r := n-1, 0
	for doubt > 0 {
		k := min(slots, doubt)
		doubt = int(math.Ceil(float64(doubt-k) / float64(k+1)))
		r++
	}
	return max(r, 1)
}

// Report is a bisect's outcome.
type Report struct {
	First      string   // the first bad commit ("" when skipped commits hide it)
	Candidates []string // when skipped commits hide it: the commits that may be first
	Result     Result   // the test's verdict on First
	Rounds     int
	Tested     int
	Built      int // builds made (a commit's build answered from the cache is none)
	Wall       time.Duration
}

// Run bisects. The first round also tests GOOD and BAD themselves: a
// GOOD that fails the test, a BAD that passes it, or an end that cannot
// be tested (it does not build) is an InputError.
func Run(ctx context.Context, o Options, rng *Range) (*Report, error) {
	start := time.Now()
	unlock, err := lock(o.Dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var before map[string]time.Time
	if o.Builds != nil {
		if before, err = o.Builds(ctx); err != nil {
			return nil, err
		}
	}
	commits := append([]string{rng.Good}, rng.Commits...)
	states := make([]State, len(commits))
	results := make([]Result, len(commits))
	wt := &worktrees{repo: o.Repo, dir: filepath.Join(o.Dir, "trees")}
	defer wt.removeAll()
	rep := &Report{}
	var roundTimes []time.Duration
	fmt.Fprintf(o.Out, "bisect: %s after %s, %s, at most %s; test: %s\n",
		count(len(rng.Commits), "commit"), short(rng.Good), count(o.Slots, "slot"), count(Rounds(len(rng.Commits), o.Slots), "round"), o.Tester.Describe())
	for round := 1; ; round++ {
		idx := pick(states, o.Slots)
		if round == 1 {
			idx = append([]int{0, len(commits) - 1}, idx...)
		}
		if len(idx) == 0 {
			break
		}
		roundStart := time.Now()
		fmt.Fprintf(o.Out, "round %d: testing %s\n", round, count(len(idx), "commit"))
		res, err := testRound(ctx, o, wt, commits, idx)
		if err != nil {
			return nil, err
		}
		for i, c := range idx {
			states[c], results[c] = res[i].State, res[i]
			fmt.Fprintf(o.Out, "  %s %-5s %s  %s\n", short(commits[c]), res[i].State, o.Repo.Subject(ctx, commits[c]), res[i].Detail)
		}
		rep.Rounds, rep.Tested = round, rep.Tested+len(idx)
		roundTimes = append(roundTimes, time.Since(roundStart))
		if round == 1 {
			if err := checkEnds(rng, states, results); err != nil {
				return nil, err
			}
		}
	}
	lo, hi := bounds(states)
	for i := lo + 1; i < hi; i++ {
		rep.Candidates = append(rep.Candidates, commits[i]) // all skipped
	}
	if len(rep.Candidates) == 0 {
		rep.First = commits[hi]
	} else {
		rep.Candidates = append(rep.Candidates, commits[hi])
	}
	rep.Result = results[hi]
	if o.Builds != nil {
		after, err := o.Builds(ctx)
		if err != nil {
			return nil, err
		}
		for k, t := range after {
			if b, ok := before[k]; !ok || !b.Equal(t) {
				rep.Built++
			}
		}
	}
	rep.Wall = time.Since(start)
	// A bisect whose commits were all built and run before says little
	// about the next one's time.
	if o.Builds == nil || rep.Built > 0 {
		noteRounds(roundFile(o), roundTimes)
	}
	rep.print(ctx, o)
	return rep, nil
}

// testRound tests the commits at idx, each set of files once: commits
// with the same tree (a revert) are the same campaign, and one campaign
// of many must not hold the same campaign twice.
func testRound(ctx context.Context, o Options, wt *worktrees, commits []string, idx []int) ([]Result, error) {
	var trees []Tree
	first := map[string]int{} // tree hash -> index into trees
	of := make([]int, len(idx))
	for i, c := range idx {
		h, err := o.Repo.Tree(ctx, commits[c])
		if err != nil {
			return nil, err
		}
		if j, ok := first[h]; ok {
			of[i] = j
			continue
		}
		root, err := wt.checkout(ctx, len(trees), commits[c])
		if err != nil {
			return nil, err
		}
		first[h], of[i] = len(trees), len(trees)
		trees = append(trees, Tree{Commit: commits[c], Root: root})
	}
	res, err := o.Tester.Test(ctx, trees)
	if err != nil {
		return nil, err
	}
	out := make([]Result, len(idx))
	for i, j := range of {
		out[i] = res[j]
		if trees[j].Commit != commits[idx[i]] {
			out[i].Detail += " (the same files as " + short(trees[j].Commit) + ")"
		}
	}
	return out, nil
}

// checkEnds refuses a range whose ends the test contradicts.
func checkEnds(rng *Range, states []State, results []Result) error {
	good, bad := 0, len(states)-1
	switch {
	case states[good] == Skip:
		return inputErr("GOOD %s cannot be tested: %s", short(rng.Good), results[good].Detail)
	case states[bad] == Skip:
		return inputErr("BAD %s cannot be tested: %s", short(rng.Commits[len(rng.Commits)-1]), results[bad].Detail)
	case states[good] == Bad:
		return inputErr("GOOD %s fails the test: %s", short(rng.Good), results[good].Detail)
	case states[bad] == Good:
		return inputErr("BAD %s passes the test: %s", short(rng.Commits[len(rng.Commits)-1]), results[bad].Detail)
	}
	return nil
}

func (r *Report) print(ctx context.Context, o Options) {
	if r.First != "" {
		fmt.Fprintf(o.Out, "first bad commit: %s %s\n", r.First, o.Repo.Subject(ctx, r.First))
	} else {
		fmt.Fprintf(o.Out, "the first bad commit is one of (the others cannot be tested):\n")
		for _, c := range r.Candidates {
			fmt.Fprintf(o.Out, "  %s %s\n", c, o.Repo.Subject(ctx, c))
		}
	}
	if r.Result.Report != "" {
		fmt.Fprint(o.Out, r.Result.Report)
		if !strings.HasSuffix(r.Result.Report, "\n") {
			fmt.Fprintln(o.Out)
		}
	} else if r.Result.Detail != "" {
		fmt.Fprintf(o.Out, "  %s\n", r.Result.Detail)
	}
	built := ""
	if o.Builds != nil {
		built = ", " + count(r.Built, "build")
	}
	fmt.Fprintf(o.Out, "bisect: %s, %s tested%s, %s\n", count(r.Rounds, "round"), count(r.Tested, "commit"), built, r.Wall.Round(100*time.Millisecond))
}

// worktrees are the checkouts of one bisect, one directory per slot of a
// round, at the same paths in every bisect of a repository: a builder's
// workspace follows the project's directory, so a slot's next commit
// builds incrementally from its last one.
type worktrees struct {
	repo  *gitrepo.Repo
	dir   string
	added []string
}

func (w *worktrees) checkout(ctx context.Context, slot int, commit string) (string, error) {
	dir := filepath.Join(w.dir, fmt.Sprintf("slot-%d", slot))
	if err := w.repo.AddWorktree(ctx, dir, commit); err != nil {
		return "", err
	}
	w.added = append(w.added, dir)
	return dir, nil
}

func (w *worktrees) removeAll() {
	seen := map[string]bool{}
	for _, d := range w.added {
		if !seen[d] {
			seen[d] = true
			_ = w.repo.RemoveWorktree(context.Background(), d)
		}
	}
}

// lock keeps two bisects of one repository from sharing worktrees.
func lock(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("bisect directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("bisect directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, inputErr("another bisect of this repository is running (%s is locked)", dir)
	}
	return func() { f.Close() }, nil
}

// roundFile keeps the mean round time of the last bisect with this test
// that built or ran something, for --dry-run's estimate.
func roundFile(o Options) string {
	return filepath.Join(o.Dir, "round-seconds-"+simswarm.Hash("bisect test", o.Tester.Describe())[:10])
}

func noteRounds(file string, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	mean := sum / time.Duration(len(ds))
	_ = atomicfile.WriteFile(file, []byte(fmt.Sprintf("%.1f\n", mean.Seconds())), 0o644)
}

// LastRound is the mean round time of the last bisect of this repository
// with this test that built or ran something, if one did.
func LastRound(o Options) (time.Duration, bool) {
	b, err := os.ReadFile(roundFile(o))
	if err != nil {
		return 0, false
	}
	var s float64
	if _, err := fmt.Sscan(string(b), &s); err != nil {
		return 0, false
	}
	return time.Duration(s * float64(time.Second)), true
}

// DryRun says what a bisect would do: the rounds, the first round's
// commits, and the expected time from the last bisect's rounds.
func DryRun(ctx context.Context, o Options, rng *Range) {
	n := len(rng.Commits)
	r := Rounds(n, o.Slots)
	fmt.Fprintf(o.Out, "bisect: %d commits after %s; with %d slots at most %d rounds (log base %d of %d), %d sequentially\n",
		n, short(rng.Good), o.Slots, r, o.Slots+1, n, Rounds(n, 1))
	states := make([]State, n+1)
	commits := append([]string{rng.Good}, rng.Commits...)
	fmt.Fprintf(o.Out, "round 1 would test GOOD, BAD and:\n")
	for _, i := range pick(states, o.Slots) {
		fmt.Fprintf(o.Out, "  %s %s\n", short(commits[i]), o.Repo.Subject(ctx, commits[i]))
	}
	if d, ok := LastRound(o); ok {
		fmt.Fprintf(o.Out, "expected time: about %s (%d rounds of %s, the mean round of the last bisect here with this test; commits built and run before take less)\n",
			(time.Duration(r) * d).Round(100*time.Millisecond), r, d.Round(100*time.Millisecond))
	} else {
		fmt.Fprintf(o.Out, "expected time: unknown until a bisect of this repository with this test has built or run a round\n")
	}
}

// DirFor is where a repository's bisects keep their worktrees and
// results, under base.
func DirFor(base string, repo *gitrepo.Repo) string {
	return filepath.Join(base, "bisect", filepath.Base(repo.Root)+"-"+simswarm.Hash("bisect", repo.Root)[:10])
}

// count is "1 round", "2 rounds".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func short(h string) string {
	if len(h) > 10 {
		return h[:10]
	}
	return h
}
