package omnetpp

import (
	"reflect"
	"strings"
	"testing"
)

func dirs(refs []Ref) []string {
	var out []string
	for _, r := range refs {
		if r.Name != "" {
			out = append(out, "name:"+r.Name)
		} else {
			out = append(out, r.Dir)
		}
	}
	return out
}

func TestProjectRefs(t *testing.T) {
	// queuenet's .project as OMNeT++ 6.1 ships it (shortened).
	b := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<projectDescription>
	<name>queuenet</name>
	<projects>
		<project>queueinglib</project>
	</projects>
	<buildSpec></buildSpec>
</projectDescription>`)
	refs, err := ProjectRefs(b, "queuenet/.project")
	if err != nil {
		t.Fatal(err)
	}
	if got := dirs(refs); !reflect.DeepEqual(got, []string{"name:queueinglib"}) || refs[0].Via != "queuenet/.project" {
		t.Errorf("refs = %v %+v", got, refs)
	}
	if n := ProjectName(b); n != "queuenet" {
		t.Errorf("name = %q", n)
	}
	if _, err := ProjectRefs([]byte("<projectDescription><name>x"), "x"); err == nil {
		t.Error("a truncated .project parsed")
	}
}

func TestMakefileRefs(t *testing.T) {
	// The shape of a Simu5G-style generated src/Makefile and a root
	// Makefile whose makefiles target runs opp_makemake in src/.
	src := []byte(`# generated
INET4_5_PROJ=../../inet4.5
INCLUDE_PATH = -I. -I$(INET4_5_PROJ)/src \
    -I../lib/include
LIBS = $(LDFLAG_LIBPATH)$(INET4_5_PROJ)/src  -lINET$(D)
COPTS = $(CFLAGS) -I$(OMNETPP_INCL_DIR)
`)
	got := dirs(MakefileRefs(src, "/w/simu5g/src", "simu5g/src/Makefile"))
	want := []string{"/w/simu5g/src", "/w/inet4.5/src", "/w/simu5g/lib/include"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("src/Makefile refs = %v, want %v", got, want)
	}
	root := []byte("makefiles:\n\t@cd src && opp_makemake --make-so -f --deep -KINET_PROJ=../../inet -I$(INET_PROJ)/src -L$(INET_PROJ)/src -lINET\n")
	got = dirs(MakefileRefs(root, "/w/app", "app/Makefile"))
	if !reflect.DeepEqual(got, []string{"/w/inet/src"}) {
		t.Errorf("root Makefile refs = %v", got)
	}
}

func TestIniRefs(t *testing.T) {
	ini := []byte("[General]\nned-path = .;../queueinglib  # the library\nload-libs = ../lib/mylib\ninclude ../common.ini\n[Config X]\nnetwork = N\n")
	refs, inc := IniRefs(ini, "/w/queuenet", "queuenet/omnetpp.ini")
	if got := dirs(refs); !reflect.DeepEqual(got, []string{"/w/queuenet", "/w/queueinglib", "/w/lib"}) {
		t.Errorf("refs = %v", got)
	}
	if !reflect.DeepEqual(inc, []string{"/w/common.ini"}) {
		t.Errorf("includes = %v", inc)
	}
}

func TestLauncherRefs(t *testing.T) {
	for _, c := range []struct {
		name, script string
		want         []string
	}{
		{"queuenet", "#!/bin/sh\nopp_run -l $(dirname $0)/../queueinglib/queueinglib $*\n", []string{"/w/queueinglib"}},
		{"variable", "#!/bin/bash\nDIR=$(cd $(dirname $0) && pwd)\nexec opp_run_release -n \"$DIR/../src:$DIR/../examples\" -l $DIR/../src/INET \"$@\"\n",
			[]string{"/w/src", "/w/examples", "/w/src"}},
		{"not a script", "\x7fELF\x02\x01", nil},
	} {
		if got := dirs(LauncherRefs([]byte(c.script), "/w/bin", c.name)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: refs = %v, want %v", c.name, got, c.want)
		}
	}
	if got := dirs(CommandRefs([]string{"-u", "Cmdenv", "-n", "../a;../b", "-l", "../lib/x", "-c", "C"}, "/w/sim", "cmd")); !reflect.DeepEqual(got, []string{"/w/a", "/w/b", "/w/lib"}) {
		t.Errorf("command refs = %v", got)
	}
	if got := IniFiles([]string{"./aloha", "-f", "a.ini", "b.ini", "-c", "X"}); !reflect.DeepEqual(got, []string{"a.ini", "b.ini"}) {
		t.Errorf("ini files = %v", got)
	}
	if got := IniFiles([]string{"./aloha", "-c", "X"}); !reflect.DeepEqual(got, []string{"omnetpp.ini"}) {
		t.Errorf("default ini files = %v", got)
	}
}

func TestMissingLibrary(t *testing.T) {
	for in, want := range map[string]string{
		"./prog: error while loading shared libraries: libext.so.1: cannot open shared object file: No such file or directory":                        "libext.so.1",
		"<!> Error: Cannot load library './../queueinglib//libqueueinglib.so': libgone.so: cannot open shared object file: No such file or directory": "libgone.so",
		"<!> Error: Cannot load library './../queueinglib//libqueueinglib.so': ./../queueinglib//libqueueinglib.so: cannot open shared object file":   "./../queueinglib//libqueueinglib.so",
	} {
		if got, ok := MissingLibrary([]byte(in)); !ok || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, ok, want)
		}
	}
	if _, ok := MissingLibrary([]byte("<!> Error: No such config: X")); ok {
		t.Error("an unrelated error named a library")
	}
}

func TestLibraryProblem(t *testing.T) {
	env := LibraryProblem([]byte("./app: error while loading shared libraries: libext.so.1: cannot open shared object file: No such file or directory"))
	if !strings.Contains(env, "runner's environment lacks the shared library libext.so.1") {
		t.Errorf("environment: %q", env)
	}
	own := LibraryProblem([]byte("<!> Error: Cannot load library '../lib/libx.so': ../lib/libx.so: cannot open shared object file"))
	if !strings.Contains(own, "project's library ../lib/libx.so") {
		t.Errorf("project: %q", own)
	}
	if LibraryProblem([]byte("<!> Error: No such config: X")) != "" {
		t.Error("an unrelated failure blamed on a library")
	}
}
