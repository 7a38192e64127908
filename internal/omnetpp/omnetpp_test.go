package omnetpp

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func TestParseRunNumbersCaptured(t *testing.T) {
	filterOut, filterExit := splitExit(t, captured(t, "aloha-s-q-runnumbers-filter.stdout"))
	if filterExit != 0 {
		t.Fatalf("filter case exit = %d, want 0", filterExit)
	}
	cases := []struct {
		name   string
		stdout []byte
		want   []int
	}{
		{"with -s", captured(t, "aloha-s-q-runnumbers.stdout"), seq(42)},
		{"banner without -s", captured(t, "aloha-q-runnumbers.stdout"), seq(42)},
		{"expression filter", filterOut, []int{0, 1}},
		{"no such config (empty stdout)", captured(t, "aloha-noconfig.stdout"), []int{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseRunNumbers(c.stdout)
			if err != nil {
				t.Fatalf("ParseRunNumbers: %v", err)
			}
			if got == nil || !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
	if exitCode(t, "aloha-noconfig") != 1 {
		t.Fatal("noconfig case should have exited 1")
	}
}

func TestParseRunNumbersUnfilteredFilterFileIsError(t *testing.T) {
	// The raw filter file still has "exit=0" in it: that is garbage to the parser.
	_, err := ParseRunNumbers(captured(t, "aloha-s-q-runnumbers-filter.stdout"))
	if err == nil || !strings.Contains(err.Error(), `"exit=0"`) {
		t.Fatalf("err = %v, want one naming \"exit=0\"", err)
	}
}

func TestParseRunNumbers(t *testing.T) {
	long := strings.Repeat("x", 100)
	cases := []struct {
		name    string
		in      string
		want    []int
		wantErr string
	}{
		{name: "empty", in: "", want: []int{}},
		{name: "blank", in: " \n\t\n", want: []int{}},
		{name: "crlf", in: " 0 1 2\r\n", want: []int{0, 1, 2}},
		{name: "unsorted kept in order", in: " 5 3 4\n", want: []int{5, 3, 4}},
		{name: "leading zeros", in: "007", want: []int{7}},
		{name: "banner line only", in: "Config: X\nNumber of runs: 2\n\nRun numbers: 3 5\n\nEnd.\n", want: []int{3, 5}},
		{name: "banner with no runs", in: "Config: X\nRun numbers:\nEnd.\n", want: []int{}},
		{name: "word", in: " 0 1 garbage 2", wantErr: `"garbage"`},
		{name: "negative", in: "-1", wantErr: `"-1"`},
		{name: "plus sign", in: "+1", wantErr: `"+1"`},
		{name: "float", in: "1.0", wantErr: `"1.0"`},
		{name: "range syntax", in: "0..3", wantErr: `"0..3"`},
		{name: "overflow", in: "99999999999999999999999", wantErr: "out of range"},
		{name: "duplicate", in: " 0 1 0", wantErr: "run 0 listed twice"},
		{name: "duplicate in banner", in: "Run numbers: 4 4\n", wantErr: "run 4 listed twice"},
		{name: "banner without run numbers line", in: "OMNeT++ Discrete Event Simulation\n", wantErr: `"OMNeT++"`},
		{name: "long token truncated", in: long, wantErr: `"` + strings.Repeat("x", 40) + `"...`},
		{name: "binary", in: "\x00\xff", wantErr: `"\x00\xff"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseRunNumbers([]byte(c.in))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one containing %s", err, c.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("error is not one line: %q", err)
				}
				if strings.Contains(err.Error(), strings.Repeat("x", 41)) {
					t.Fatalf("long token not truncated: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRunNumbers: %v", err)
			}
			if got == nil || !slices.Equal(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestParseRunsCaptured(t *testing.T) {
	aloha, err := ParseRuns(captured(t, "aloha-s-q-runs.stdout"))
	if err != nil {
		t.Fatal(err)
	}
	if len(aloha) != 42 {
		t.Fatalf("aloha: %d runs, want 42", len(aloha))
	}
	for i, r := range aloha {
		if r.Number != i {
			t.Fatalf("aloha run %d has number %d", i, r.Number)
		}
	}
	if want := (RunInfo{0, "$numHosts=10, $iaMean=1, $repetition=0"}); aloha[0] != want {
		t.Errorf("aloha[0] = %+v, want %+v", aloha[0], want)
	}
	if want := (RunInfo{41, "$numHosts=20, $iaMean=9, $repetition=1"}); aloha[41] != want {
		t.Errorf("aloha[41] = %+v, want %+v", aloha[41], want)
	}

	ber, err := ParseRuns(captured(t, "inet-ber-q-runs.stdout"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ber) != 66 {
		t.Fatalf("ber: %d runs, want 66", len(ber))
	}
	if want := (RunInfo{33, `$flavour="TcpNewReno", $ber=0, $repetition=0`}); ber[33] != want {
		t.Errorf("ber[33] = %+v, want %+v", ber[33], want)
	}
	if want := (RunInfo{65, `$flavour="TcpNewReno", $ber=8e-6, $repetition=2`}); ber[65] != want {
		t.Errorf("ber[65] = %+v, want %+v", ber[65], want)
	}

	// The runnumbers banner has a "Run numbers:" line, which is no run.
	none, err := ParseRuns(captured(t, "aloha-q-runnumbers.stdout"))
	if err != nil || len(none) != 0 {
		t.Fatalf("banner: got %v, %v; want no runs", none, err)
	}
}

func TestParseRuns(t *testing.T) {
	got, err := ParseRuns([]byte("banner\nRun 3: $x=1\r\nRun 4:\nRun x: no\nRun 5:nospace\nRun 6: \n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []RunInfo{{3, "$x=1"}, {4, ""}, {6, ""}}
	if !slices.Equal(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if _, err := ParseRuns([]byte("Run 1: a\nRun 1: b\n")); err == nil || !strings.Contains(err.Error(), "run 1 listed twice") {
		t.Fatalf("duplicate: err = %v", err)
	}
	if _, err := ParseRuns([]byte("Run 99999999999999999999999: a\n")); err == nil {
		t.Fatal("overflowing run number accepted")
	}
}

func TestErrorLinesCaptured(t *testing.T) {
	cases := []struct {
		file string
		exit string
		want []string
	}{
		{"aloha-batch-failing-nostop.stderr", "aloha-batch-failing-nostop", []string{
			"<!> Error: vector::_M_default_append",
			"<!> Error: (omnetpp::cSimulation)simulation: setFES(): Cannot switch FES when a network is already set up -- during network setup",
		}},
		{"aloha-batch-failing.stderr", "aloha-batch-failing", []string{"<!> Error: vector::_M_default_append"}},
		{"aloha-run-fails.stderr", "aloha-run-fails", []string{"<!> Error: vector::_M_default_append"}},
		{"aloha-badrun.stderr", "aloha-badrun", []string{"<!> Error: Run number 99 in run list '99' is out of range 0..41"}},
		{"aloha-noconfig.stderr", "aloha-noconfig", []string{"<!> Error: No such config: NoSuchConfig"}},
		// Healthy runs print <!> status lines that are not errors.
		{"aloha-run0.stdout", "aloha-run0", nil},
		{"aloha-s-batch012.stdout", "aloha-s-batch012", nil},
		{"aloha-batch-failing.stdout", "", nil},
		{"inet-ber-run0.stdout", "inet-ber-run0", nil},
		{"inet-cputimelimit.stdout", "inet-cputimelimit", nil},
		{"inet-fingerprint-ok.stdout", "inet-fingerprint-ok", nil},
		{"inet-fingerprint-bad.stdout", "inet-fingerprint-bad", nil},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			got := ErrorLines(captured(t, c.file), 10)
			if !slices.Equal(got, c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			if c.exit != "" && (exitCode(t, c.exit) != 0) != (len(c.want) > 0) {
				t.Fatalf("exit status of %s disagrees with errors %q", c.exit, got)
			}
		})
	}
}

func TestErrorLines(t *testing.T) {
	out := []byte("\n<!> Error: vector::_M_default_append\n\n<!> Error: second\n")
	if got := ErrorLines(out, 1); !slices.Equal(got, []string{"<!> Error: vector::_M_default_append"}) {
		t.Errorf("max 1: got %q", got)
	}
	if got := ErrorLines(out, 0); got != nil {
		t.Errorf("max 0: got %q, want nil", got)
	}
	if got := ErrorLines(out, -1); len(got) != 2 {
		t.Errorf("max -1: got %q, want both lines", got)
	}

	// stdout and stderr through one pipe: an error after an unfinished line.
	mixed := []byte("** Event #5   t=1<!> Error: boom -- in module (X) Net.x (id=2), at t=1s, event #5\r\n")
	if got := ErrorLines(mixed, 5); !slices.Equal(got, []string{"<!> Error: boom -- in module (X) Net.x (id=2), at t=1s, event #5"}) {
		t.Errorf("mixed: got %q", got)
	}
	// The pre-6 form is an error too; "<!>" text that only starts with "Error" is not.
	old := []byte("<!> Error in module (A) n.a: bad\n<!> Errorless run\n<!> Warning: x\n")
	if got := ErrorLines(old, 5); !slices.Equal(got, []string{"<!> Error in module (A) n.a: bad"}) {
		t.Errorf("old form: got %q", got)
	}

	long := "<!> Error: " + strings.Repeat("é", 1000)
	got := ErrorLines([]byte(long), 1)
	if len(got) != 1 || len(got[0]) > 1000 || !strings.HasPrefix(long, got[0]) || len(got[0]) < 998 {
		t.Fatalf("long line: got %d bytes", len(got[0]))
	}
	if !strings.HasSuffix(got[0], "é") {
		t.Fatal("long line cut inside a UTF-8 sequence")
	}
}

func TestParseOutcomeCaptured(t *testing.T) {
	cases := []struct {
		file string
		want Outcome
	}{
		{"aloha-run0.stdout", Outcome{Limit: "sim-time", SimTime: "600s", Events: 18365}},
		{"inet-ber-run0.stdout", Outcome{Limit: "sim-time", SimTime: "5s", Events: 54317}},
		{"inet-cputimelimit.stdout", Outcome{Limit: "cpu-time", SimTime: "1.8722973s", Events: 63488}},
		{"inet-fingerprint-ok.stdout", Outcome{
			Fingerprint: "verified", FingerprintCalculated: "1b31-f887/tplx", FingerprintExpected: "1b31-f887/tplx",
			Limit: "sim-time", SimTime: "5.2s", Events: 186754,
		}},
		{"inet-fingerprint-bad.stdout", Outcome{
			Fingerprint: "mismatch", FingerprintCalculated: "1b31-f887/tplx", FingerprintExpected: "1111-2222/tplx",
			Limit: "sim-time", SimTime: "5.2s", Events: 186754,
		}},
		// A whole batch: the last run's status wins.
		{"aloha-s-batch012.stdout", Outcome{Limit: "sim-time", SimTime: "600s", Events: 10465}},
		// Errors are not outcomes.
		{"aloha-badrun.stderr", Outcome{}},
		{"aloha-batch-failing-nostop.stderr", Outcome{}},
		{"aloha-run-fails.stdout", Outcome{}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			if got := ParseOutcome(captured(t, c.file)); got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
	// A fingerprint mismatch and a CPU time limit both exit 0.
	for _, name := range []string{"inet-fingerprint-bad", "inet-cputimelimit"} {
		if exitCode(t, name) != 0 {
			t.Errorf("%s: exit status not 0", name)
		}
	}
}

func TestParseOutcome(t *testing.T) {
	in := "<!> No more events, simulation completed -- at t=3.5s, event #12\n" +
		"<!> Real time limit reached -- at t=1s, event #99999999999\n" +
		"<!> Error: x -- at t=9s, event #9\n"
	want := Outcome{Limit: "real-time", SimTime: "1s", Events: 99999999999}
	if got := ParseOutcome([]byte(in)); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// A later termination that is no limit clears the limit.
	in = "<!> CPU time limit reached -- at t=1s, event #2\n<!> Simulation stopped with endSimulation() -- at t=4s, event #7\n"
	want = Outcome{SimTime: "4s", Events: 7}
	if got := ParseOutcome([]byte(in)); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// Verdicts replace each other wholesale.
	in = "<!> Fingerprint mismatch! calculated: a/t, expected: b/t\n<!> Fingerprint successfully verified: c/t\n"
	want = Outcome{Fingerprint: "verified", FingerprintCalculated: "c/t", FingerprintExpected: "c/t"}
	if got := ParseOutcome([]byte(in)); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestSplitBatchOutputCaptured(t *testing.T) {
	t.Run("three runs with -s", func(t *testing.T) {
		out := captured(t, "aloha-s-batch012.stdout")
		parts, order := SplitBatchOutput(out)
		checkSplit(t, out, parts, order, []int{0, 1, 2})
		wantEvents := map[int]int64{0: 18365, 1: 18635, 2: 10465}
		for n, part := range parts {
			if !bytes.HasPrefix(part, []byte("PureAlohaExperiment run ")) {
				t.Errorf("run %d part starts %q", n, firstLine(part))
			}
			if o := ParseOutcome(part); o.Events != wantEvents[n] || o.Limit != "sim-time" {
				t.Errorf("run %d outcome %+v", n, o)
			}
		}
	})
	t.Run("failing batch", func(t *testing.T) {
		out := captured(t, "aloha-batch-failing.stdout")
		parts, order := SplitBatchOutput(out)
		checkSplit(t, out, parts, order, []int{0, 1})
		if string(parts[1]) != "ErrExp run 1: $n=-1, $repetition=0\n" {
			t.Errorf("run 1 part = %q", parts[1])
		}
		if o := ParseOutcome(parts[0]); o.Events != 68 || o.SimTime != "10s" {
			t.Errorf("run 0 outcome %+v", o)
		}
	})
	t.Run("failing batch without stop", func(t *testing.T) {
		out := captured(t, "aloha-batch-failing-nostop.stdout")
		parts, order := SplitBatchOutput(out)
		checkSplit(t, out, parts, order, []int{0, 1})
	})
	t.Run("single run without -s", func(t *testing.T) {
		out := captured(t, "aloha-run0.stdout")
		parts, order := SplitBatchOutput(out)
		checkSplit(t, out, parts, order, []int{0})
		if !bytes.HasPrefix(parts[0], []byte("OMNeT++ Discrete Event Simulation")) {
			t.Error("banner not given to the first run")
		}
	})
	t.Run("INET run", func(t *testing.T) {
		out := captured(t, "inet-cputimelimit.stdout")
		parts, order := SplitBatchOutput(out)
		checkSplit(t, out, parts, order, []int{0})
	})
	t.Run("no run started", func(t *testing.T) {
		parts, order := SplitBatchOutput(captured(t, "aloha-q-runnumbers.stdout"))
		if len(parts) != 0 || len(order) != 0 {
			t.Fatalf("got %v runs", order)
		}
	})
}

func TestSplitBatchOutput(t *testing.T) {
	noS := "banner\n\nPreparing for running configuration Exp, run #3...\nScenario: $x=1\n" +
		"<!> Simulation time limit reached -- at t=1s, event #4\n" +
		"Preparing for running configuration Exp, run #4...\r\nScenario: $x=2\nEnd.\n"
	parts, order := SplitBatchOutput([]byte(noS))
	checkSplit(t, []byte(noS), parts, order, []int{3, 4})
	if !strings.HasPrefix(string(parts[3]), "banner\n") || !strings.HasSuffix(string(parts[4]), "End.\n") {
		t.Fatalf("parts = %q, %q", parts[3], parts[4])
	}

	// Header-like lines naming another config or an earlier run, and lines
	// that only resemble a header, stay in the current run's part.
	tricky := "Exp run 5: $x=1\nOther run 6: hi\nExp run 5: again\nExp run 7:x\nmy run 8: a b\nExp run 9\nExp run -1: z\n" +
		"Preparing for running configuration Exp, run #6\nExp run 6:"
	parts, order = SplitBatchOutput([]byte(tricky))
	checkSplit(t, []byte(tricky), parts, order, []int{5, 6})
	if string(parts[6]) != "Exp run 6:" {
		t.Fatalf("run 6 part = %q", parts[6])
	}

	parts, order = SplitBatchOutput(nil)
	if len(parts) != 0 || len(order) != 0 {
		t.Fatalf("empty: got %v", order)
	}
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return string(line)
}

// checkSplit verifies the run order, that every run has a part, and that the
// parts tile the output exactly.
func checkSplit(t *testing.T, out []byte, parts map[int][]byte, order, want []int) {
	t.Helper()
	if !slices.Equal(order, want) {
		t.Fatalf("order = %v, want %v", order, want)
	}
	if len(parts) != len(order) {
		t.Fatalf("%d parts for %d runs", len(parts), len(order))
	}
	var joined []byte
	for _, n := range order {
		part, ok := parts[n]
		if !ok {
			t.Fatalf("no part for run %d", n)
		}
		joined = append(joined, part...)
	}
	if !bytes.Equal(joined, out) {
		t.Fatalf("parts do not add up to the output:\n%q\nvs\n%q", joined, out)
	}
}
