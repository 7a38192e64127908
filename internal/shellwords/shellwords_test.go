package shellwords

import (
	"reflect"
	"testing"
)

func TestSplit(t *testing.T) {
	for in, want := range map[string][]string{
		`./aloha -c PureAloha1 -r 0`:       {"./aloha", "-c", "PureAloha1", "-r", "0"},
		`-r '$numHosts==10 && $x>1'`:       {"-r", "$numHosts==10 && $x>1"},
		`"a b" c\ d "e\"f" ''`:             {"a b", "c d", `e"f`, ""},
		"  \tspaced   out  ":               {"spaced", "out"},
		`--fingerprint="1a2b-3c4d/tplx,x"`: {"--fingerprint=1a2b-3c4d/tplx,x"},
	} {
		got, err := Split(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Split(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`'open`, `"open`} {
		if _, err := Split(bad); err == nil {
			t.Errorf("Split(%q): no error", bad)
		}
	}
}
