package campaign

import (
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseList: any --list file is refused with one line naming the file,
// or read into items that each have a directory, a command and their own
// results directory.
func FuzzParseList(f *testing.F) {
	for _, s := range []string{"aloha ./aloha -c PureAlohaExperiment -r 0..3\n# c\n\n../queuenet ./queuenet -c CQN\n",
		"a 'unterminated\n", "onlydir\n", "a x\na x\n", "\"d i r\" ./p \"a b\"\n", "/abs ./p\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		items, err := ParseList("list.txt", strings.NewReader(body), "results")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "list.txt") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q does not name the file on one line", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, it := range items {
			if len(it.Argv) == 0 || it.Dir == "" {
				t.Fatalf("item without a directory or command: %+v", it)
			}
			key := it.Results
			if !filepath.IsAbs(key) {
				key = filepath.Join(it.Dir, key)
			}
			if seen[key] {
				t.Fatalf("two items share the results directory %s", it.Results)
			}
			seen[key] = true
		}
	})
}
