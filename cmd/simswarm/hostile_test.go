package main

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/testkit"
)

// hostileEntry is one file a hostile runner sends: a regular file, or a
// symlink (link) or hard link (hard) where it hopes to get one through.
type hostileEntry struct{ name, body, link, hard string }

// hostileCase is one run's record as a hostile runner writes it: its files
// inline in the record, or as a results archive.
type hostileCase struct {
	name    string
	archive bool
	files   []hostileEntry
	refused bool // the client must fail the run and write none of it
}

func hostileArchive(t *testing.T, entries []hostileEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.link != "":
			hdr = &tar.Header{Name: e.name, Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: e.link}
		case e.hard != "":
			hdr = &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeLink, Linkname: e.hard}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// TestHostileRunner: something holding the cluster credentials answers a
// real client's run jobs with records and archives that try to write
// outside results/ (.., absolute paths, symlinks out, a link planted in
// results/, a symlink at the temporary name the client once used, a hard
// link, simswarm's own scratch directory) or to leave half a run behind (a
// refused entry after good ones). Nothing may be written outside results/,
// nothing of a refused run may stay in it, and each refused run fails with
// the reason.
func TestHostileRunner(t *testing.T) {
	srv := startLoopServer(t)
	startWorker(t, "builder", "--server", srv.url, "--creds", srv.creds, "--dir", filepath.Join(t.TempDir(), "ws"))
	parent := t.TempDir()
	outside := filepath.Join(parent, "outside")
	results := filepath.Join(parent, "results")
	for _, d := range []string{outside, results} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	victim := filepath.Join(outside, "victim")
	os.WriteFile(victim, []byte("victim"), 0o644)
	// What may already be in results/ from a user (or an older simswarm):
	// a link to elsewhere, and a symlink on the temporary name the client
	// used to write inline files through.
	os.Symlink(outside, filepath.Join(results, "planted"))
	os.Symlink(victim, filepath.Join(results, "tmp.sca.simswarm-tmp"))

	cases := []hostileCase{
		{name: "good", files: []hostileEntry{{name: "good.sca", body: "good"}, {name: "good.out", body: "out"}}},
		{name: "goodarchive", archive: true, files: []hostileEntry{{name: "big/one.vec", body: "vec"}, {name: "big/one.out", body: "out"}}},
		{name: "tempname", files: []hostileEntry{{name: "tmp.sca", body: "tmp"}}},
		{name: "dotdot", refused: true, files: []hostileEntry{{name: "../escape.sca", body: "evil"}}},
		{name: "dotdotarchive", archive: true, refused: true, files: []hostileEntry{{name: "x/../../escape.vec", body: "evil"}}},
		{name: "absolute", refused: true, files: []hostileEntry{{name: filepath.Join(outside, "abs.sca"), body: "evil"}}},
		{name: "absolutearchive", archive: true, refused: true, files: []hostileEntry{{name: filepath.Join(outside, "abs.vec"), body: "evil"}}},
		{name: "symlinkout", archive: true, refused: true, files: []hostileEntry{{name: "d", link: outside}, {name: "d/through.vec", body: "evil"}}},
		{name: "plantedlink", refused: true, files: []hostileEntry{{name: "planted/through.sca", body: "evil"}}},
		{name: "plantedarchive", archive: true, refused: true, files: []hostileEntry{{name: "planted/through.vec", body: "evil"}}},
		{name: "hardlink", archive: true, refused: true, files: []hostileEntry{{name: "h.sca", hard: victim}}},
		{name: "scratch", refused: true, files: []hostileEntry{{name: ".simswarm-scratch/x.sca", body: "evil"}}},
		{name: "aftergood", archive: true, refused: true, files: []hostileEntry{
			{name: "first.vec", body: "1"}, {name: "second/two.vec", body: "2"}, {name: "../after.vec", body: "evil"}}},
	}
	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.name
	}
	dir := templateProject(t, "[build]\ncommand = \"\"\n[run]\ncommand = \"true {resultdir}\"\n[run.vars]\ncase = "+quoteList(names...)+"\n", map[string]string{})

	eng := srv.engine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	go hostileRunner(ctx, t, eng, cases)

	r := runSimswarm(t, dir, t.TempDir(), "run", "--server", srv.url, "--creds", srv.creds, "--results", results, "--json")
	s := jsonSummary(t, r)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (runs failed)\n%s", r.code, r.stderr)
	}
	reasons := map[int]string{}
	for _, f := range s.Failures {
		reasons[f.Run] = f.Reason
	}
	for i, c := range cases {
		reason, failed := reasons[i]
		switch {
		case c.refused && !failed:
			t.Errorf("run %d (%s): accepted", i, c.name)
		case c.refused && !strings.Contains(reason, "unsafe path") && !strings.Contains(reason, "refusing"):
			t.Errorf("run %d (%s) failed for another reason: %q", i, c.name, reason)
		case !c.refused && failed:
			t.Errorf("run %d (%s) failed: %q", i, c.name, reason)
		}
	}
	if got := testkit.Tree(outside); strings.Join(got, ",") != "victim=victim" {
		t.Errorf("outside results/ now holds %q", got)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 2 {
		t.Errorf("beside results/: %v", ents)
	}
	want := []string{"big/", "big/one.out=out", "big/one.vec=vec", "good.out=out", "good.sca=good",
		"planted -> " + outside, "tmp.sca.simswarm-tmp -> " + victim, "tmp.sca=tmp"}
	sort.Strings(want)
	// Every run finished, refused or not, so each has a provenance line.
	var got []string
	for _, e := range testkit.Tree(results) {
		if prov, ok := strings.CutPrefix(e, "provenance.jsonl="); ok {
			if n := strings.Count(prov, "\n"); n != len(cases) {
				t.Errorf("provenance.jsonl has %d lines for %d runs", n, len(cases))
			}
			continue
		}
		got = append(got, e)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("results/ holds\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// hostileRunner takes the campaign's run jobs and answers each with the
// record of its case, as a runner would write it: results archive first,
// then the full record, then the status.
func hostileRunner(ctx context.Context, t *testing.T, eng *engine.Engine, cases []hostileCase) {
	for done := 0; done < len(cases) && ctx.Err() == nil; {
		leases, err := eng.Take(ctx, engine.QueueRun, len(cases), time.Second)
		if err != nil {
			continue
		}
		for _, m := range leases {
			taken, err := engine.Decode[simswarm.RunJob](m, simswarm.RoleRunner)
			if err != nil || taken.Body.Run >= len(cases) {
				t.Errorf("a job the campaign did not submit: %v", err)
				continue
			}
			j := taken.Body
			c := cases[j.Run]
			now := time.Now().UTC().Truncate(time.Millisecond)
			rec := &simswarm.RunRecord{Key: j.Key, Campaign: j.Campaign, Run: j.Run, State: simswarm.RunSucceeded,
				Worker: "hostile", Host: "hostile", Started: now, Finished: now}
			for _, f := range c.files {
				file := simswarm.File{Name: f.name, Size: int64(len(f.body))}
				if !c.archive {
					file.Data = []byte(f.body)
				}
				rec.Files = append(rec.Files, file)
			}
			if c.archive {
				rec.Object = engine.ResultObject(j.Key)
				if err := eng.PutBytes(ctx, rec.Object, hostileArchive(t, c.files)); err != nil {
					t.Error(err)
				}
			}
			if err := m.Settle(ctx, engine.RunAnswer(rec)); err != nil {
				t.Error(err)
			}
			done++
		}
	}
}
