package snapshot

import "testing"

func TestIgnoreMatcher(t *testing.T) {
	type probe struct {
		path    string
		isDir   bool
		ignored bool
	}
	cases := []struct {
		patterns []string
		probes   []probe
	}{
		{[]string{"*.o"}, []probe{{"a.o", false, true}, {"src/x/a.o", false, true}, {"a.oo", false, false}, {"a.c", false, false}}},
		{[]string{"build/"}, []probe{{"build", true, true}, {"build", false, false}, {"src/build", true, true}, {"build/x.c", false, true}}},
		{[]string{"/build"}, []probe{{"build", false, true}, {"build/x", false, true}, {"src/build", true, false}}},
		{[]string{"doc/*.txt"}, []probe{{"doc/a.txt", false, true}, {"doc/x/a.txt", false, false}, {"src/doc/a.txt", false, false}}},
		{[]string{"**/logs"}, []probe{{"logs", true, true}, {"a/b/logs", true, true}, {"a/logs/x", false, true}}},
		{[]string{"a/**/b"}, []probe{{"a/b", false, true}, {"a/x/b", false, true}, {"a/x/y/b", false, true}, {"b", false, false}}},
		{[]string{"gen/**", "!gen/keep.h"}, []probe{{"gen", true, false}, {"gen/a.h", false, true}, {"gen/keep.h", false, false}, {"gen/d/e", false, true}}},
		{[]string{"*.log", "!important.log"}, []probe{{"x.log", false, true}, {"important.log", false, false}, {"d/important.log", false, false}}},
		// A file inside an ignored directory cannot be re-included.
		{[]string{"tmp/", "!tmp/keep"}, []probe{{"tmp/keep", false, true}}},
		{[]string{"fil?.c", "[ab].h"}, []probe{{"file.c", false, true}, {"fil.c", false, false}, {"a.h", false, true}, {"c.h", false, false}}},
		{[]string{"# comment", "", `\#lit`, `\!bang`, "trail  "}, []probe{{"# comment", false, false}, {"#lit", false, true}, {"!bang", false, true}, {"trail", false, true}}},
		{[]string{"**"}, []probe{{"x", false, true}, {"a/b", false, true}}},
	}
	for _, c := range cases {
		m, err := compileIgnores(c.patterns)
		if err != nil {
			t.Fatalf("%q: %v", c.patterns, err)
		}
		for _, p := range c.probes {
			if got := m.ignoredPath(p.path, p.isDir); got != p.ignored {
				t.Errorf("patterns %q: ignored(%q, dir=%v) = %v, want %v", c.patterns, p.path, p.isDir, got, p.ignored)
			}
		}
	}
	if _, err := compileIgnores([]string{"a[b"}); err == nil {
		t.Error("malformed pattern accepted")
	}
}
