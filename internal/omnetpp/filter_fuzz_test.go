package omnetpp

import (
	"slices"
	"strings"
	"testing"
)

// FuzzRunFilter: -r (or --cmdenv-runs-to-execute) is taken out of any
// command line without touching the other arguments, and a filter of plain
// run numbers reads back the same through RunNumberArg.
func FuzzRunFilter(f *testing.F) {
	for _, s := range []string{"-c\x00X\x00-r\x000..3,40-41", "-r0,1", "--cmdenv-runs-to-execute=5\x00-r\x007", "-r", "-c\x00A\x00-r\x00$numHosts==10 && $iaMean==1", "-r\x00 3 , 3 ,1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		filter, rest, found := RunFilter(args)
		if !found && (filter != "" || !slices.Equal(rest, args)) {
			t.Fatalf("RunFilter(%q) found nothing but changed the arguments: %q, %q", args, filter, rest)
		}
		if len(rest) > len(args) {
			t.Fatalf("RunFilter(%q) added arguments: %q", args, rest)
		}
		runs, ok := PlainRunNumbers(filter)
		if !ok {
			return
		}
		if !slices.IsSorted(runs) || len(slices.Compact(slices.Clone(runs))) != len(runs) {
			t.Fatalf("PlainRunNumbers(%q) = %v: not sorted and distinct", filter, runs)
		}
		back, ok := PlainRunNumbers(RunNumberArg(runs))
		if !ok || !slices.Equal(back, runs) {
			t.Fatalf("PlainRunNumbers(RunNumberArg(%v)) = %v, %v", runs, back, ok)
		}
	})
}
