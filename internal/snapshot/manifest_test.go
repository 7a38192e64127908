package snapshot

import (
	"strings"
	"testing"
)

const (
	h1 = "1111111111111111111111111111111111111111111111111111111111111111"
	h2 = "2222222222222222222222222222222222222222222222222222222222222222"
)

func TestEncodeCanonical(t *testing.T) {
	a := &Manifest{Entries: []Entry{
		{Path: "a.c", Mode: ModeFile, Size: 3, Hash: h1},
		{Path: "bin/run", Mode: ModeExec, Size: 5, Hash: h2},
		{Path: "lib", Mode: ModeSymlink, Link: "../lib"},
	}}
	// The same entries in another order give the same bytes and key.
	b := &Manifest{Entries: []Entry{a.Entries[2], a.Entries[0], a.Entries[1]}}
	if string(a.Encode()) != string(b.Encode()) || a.Key() != b.Key() {
		t.Fatalf("order changed the encoding:\n%s\n%s", a.Encode(), b.Encode())
	}
	want := `{"entries":[{"p":"a.c","m":"f","s":3,"h":"` + h1 + `"},{"p":"bin/run","m":"x","s":5,"h":"` + h2 + `"},{"p":"lib","m":"l","l":"../lib"}]}`
	if got := string(a.Encode()); got != want {
		t.Fatalf("Encode:\n got %s\nwant %s", got, want)
	}
	if got := string((&Manifest{}).Encode()); got != `{"entries":[]}` {
		t.Fatalf("empty manifest encodes as %s", got)
	}
	if len(a.Key()) != 64 {
		t.Fatalf("key %q is not hex sha256", a.Key())
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	m := &Manifest{Entries: []Entry{
		{Path: "a-b", Mode: ModeFile, Hash: h1},
		{Path: "a/b", Mode: ModeFile, Size: 1, Hash: h1},
		{Path: "a/c d/é.ned", Mode: ModeExec, Size: 7, Hash: h2},
		{Path: "z", Mode: ModeSymlink, Link: "/etc/passwd"},
	}}
	got, err := Decode(m.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.Key() != m.Key() || len(got.Entries) != 4 {
		t.Fatalf("round trip changed the manifest: %s", got.Encode())
	}
	if bl := got.Blobs(); len(bl) != 2 || bl[0] != h1 || bl[1] != h2 {
		t.Fatalf("Blobs = %v", bl)
	}
	if got.TotalSize() != 8 {
		t.Fatalf("TotalSize = %d", got.TotalSize())
	}
	if m, err := Decode([]byte(`{"entries":null}`)); err != nil || len(m.Entries) != 0 {
		t.Fatalf("empty manifest: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	f := func(p string) string { return `{"p":"` + p + `","m":"f","s":1,"h":"` + h1 + `"}` }
	list := func(es ...string) string { return `{"entries":[` + strings.Join(es, ",") + `]}` }
	cases := map[string]string{
		"absolute":          list(f("/etc/passwd")),
		"dotdot":            list(f("../x")),
		"inner dotdot":      list(f("a/../../x")),
		"dot":               list(f("./a")),
		"empty component":   list(f("a//b")),
		"trailing slash":    list(f("a/")),
		"empty path":        list(f("")),
		"unsorted":          list(f("b"), f("a")),
		"duplicate":         list(f("a"), f("a")),
		"below a file":      list(f("a"), f("a/b")),
		"below a symlink":   list(`{"p":"a","m":"l","l":"/tmp"}`, f("a/b")),
		"bad mode":          list(`{"p":"a","m":"d","h":"` + h1 + `"}`),
		"uppercase hash":    list(`{"p":"a","m":"f","h":"` + strings.Repeat("AB", 32) + `"}`),
		"short hash":        list(`{"p":"a","m":"f","h":"abc"}`),
		"missing hash":      list(`{"p":"a","m":"x","s":1}`),
		"negative size":     list(`{"p":"a","m":"f","s":-1,"h":"` + h1 + `"}`),
		"link with hash":    list(`{"p":"a","m":"l","l":"b","h":"` + h1 + `"}`),
		"link without dest": list(`{"p":"a","m":"l"}`),
		"file with link":    list(`{"p":"a","m":"f","h":"` + h1 + `","l":"b"}`),
		"unknown field":     `{"entries":[],"extra":1}`,
		"trailing data":     `{"entries":[]} {}`,
		"not an object":     `null`,
		"garbage":           `{"entries":[`,
	}
	for name, in := range cases {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("%s: Decode accepted %s", name, in)
		} else if !strings.HasPrefix(err.Error(), "snapshot:") {
			t.Errorf("%s: error %q lacks the package prefix", name, err)
		}
	}
}
