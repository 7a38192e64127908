package shellwords

import (
	"slices"
	"strings"
	"testing"
)

// quote makes s one word the way a user writing a list or suite line
// would: single quotes, a quote inside closed, escaped and reopened.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// FuzzSplit: any line splits or is refused on one line, and words quoted
// as a shell user quotes them split back into the same words.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{`./aloha -c PureAloha1 -r 0`, `-r '$numHosts==10 && $x>1'`, `"a b" c\ d "e\"f" ''`, `'open`, `a\`, "tab\there"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := Split(line)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of %q is not one line: %q", line, err)
			}
			return
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = quote(w)
		}
		back, err := Split(strings.Join(quoted, " "))
		if err != nil || !slices.Equal(back, words) {
			t.Fatalf("Split(%q) = %q; quoted again it splits into %q, %v", line, words, back, err)
		}
	})
}
