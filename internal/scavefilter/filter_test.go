package scavefilter

import (
	"errors"
	"strings"
	"testing"
)

type fields map[string]string

func (f fields) Field(n string) (string, bool) { v, ok := f[n]; return v, ok }

var server = fields{"type": "scalar", "module": "Aloha.server", "name": "duration", "run": "PureAlohaExperiment-0-20261201",
	"file": "results/a.sca", "runattr:inifile": "omnetpp.ini", "itervar:numHosts": "10", "attr:source": "collision",
	"config:repeat": "2"}

func host(i string) fields {
	return fields{"type": "parameter", "module": "Aloha.host[" + i + "]", "name": "iaTime"}
}

// The expectations are what opp_scavetool 6.1 answered to the same
// expressions on aloha's result files.
func TestMatchesAsScavetool(t *testing.T) {
	cases := []struct {
		expr string
		item fields
		want bool
	}{
		{"runattr:inifile =~ *", server, true},
		{"runattr:inifile =~ **", server, true},
		{"module =~ *server", server, true},
		{"module =~ **server AND name =~ duration", server, true},
		{"name =~ DURATION", server, false},
		{"name =~ duration and not module =~ **", server, false},
		{`name =~ "dur*:{a-m}*"`, server, false},
		{`name =~ "coll*"`, fields{"name": "collisionLength:mean"}, true},
		{`name =~ "coll*:{a-m}*"`, fields{"name": "collisionLength:mean"}, true},
		{`name =~ "coll*:{a-m}*"`, fields{"name": "collisionLength:sum"}, false},
		{"itervar:numHosts =~ {5..10}", server, true},
		{"itervar:numHosts =~ {11..}", server, false},
		{"itervar:numHosts =~ {..10}", server, true},
		{`module =~ "Aloha.host[2..3]" and name =~ iaTime`, host("2"), true},
		{`module =~ "Aloha.host[2..3]" and name =~ iaTime`, host("4"), false},
		{"module =~ Aloha.host[..1] and name=~iaTime", host("1"), true},
		{"module =~ Aloha.host?1? and name=~iaTime", host("1"), true},
		{"module =~ Aloha.host?1? and name=~iaTime", host("11"), false},
		{"name =~ ?uration", server, true},
		{"attr:source =~ collision", server, true},
		{"attr:unit =~ *", server, false}, // no such attribute
		{"config:repeat =~ 2 AND duration", server, true},
		{"run =~ Pure* and duration", server, true},
		{"file =~ *.sca and duration", server, true},
		{"NOT duration AND type =~ scalar", server, false},
		{`name =~ dur\ation`, server, true},
		{"dur*tion", server, true},
		{"name =~ {d-e}uration", server, true},
		{"name =~ {^a-c}uration", server, true},
		{"name =~ {^d}uration", server, false},
		{"name =~ 'duration'", server, false}, // single quotes do not quote
		{"type =~ statistic", server, false},
		{"(x OR duration) AND NOT (type =~ vector)", server, true},
		{"x or y and duration", server, false}, // AND binds tighter
		{"duration or x and y", server, true},
		{"", server, true},
	}
	for _, c := range cases {
		f, err := Parse(c.expr)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.expr, err)
			continue
		}
		if got := f.Match(c.item); got != c.want {
			t.Errorf("%q on %v = %v, want %v", c.expr, c.item, got, c.want)
		}
	}
}

func TestSyntaxErrors(t *testing.T) {
	for _, c := range []struct{ expr, msg string }{
		{"name =~ (", "expected a pattern"},
		{"duration OR", "expression ends"},
		{"(duration", "missing ')'"},
		{"duration)", "unexpected ')'"},
		{`name =~ "abc`, "unterminated"},
		{"experiment =~ Pure*", `unknown field "experiment"`},
		{"NAME =~ x", `unknown field "NAME"`},
		{"name =~ {a-", "'{' without '}'"},
		{"name =~ {9..1}", "reversed"},
		{"a b", "unexpected 'b'"},
	} {
		_, err := Parse(c.expr)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) = %v, want a syntax error", c.expr, err)
			continue
		}
		if !strings.Contains(err.Error(), c.msg) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) error %q, want one line containing %q", c.expr, err, c.msg)
		}
	}
}

func TestPatterns(t *testing.T) {
	for _, c := range []struct {
		pat, s string
		want   bool
	}{
		{"abc", "abc", true}, {"abc", "abcd", false}, {"", "", true}, {"", "a", false},
		{"a*c", "abbbc", true}, {"a*c", "ab.bc", true}, {"a?c", "a.c", true},
		{"*a*a*a*a*a*b", strings.Repeat("a", 200), false},
		{"x{1..10}0", "x100", true}, {"x{1..10}", "x100", false}, {"x{..}", "x123", true},
		{"a[3]", "a[3]", true}, {"a[x", "a[x", true}, {`\*`, "*", true}, {`\*`, "a", false},
		{"{a-cx}", "x", true}, {"{a-cx}", "d", false}, {"h{ä}", "hä", true}, {"?", "ä", true},
	} {
		p, err := Compile(c.pat)
		if err != nil {
			t.Fatalf("Compile(%q): %v", c.pat, err)
		}
		if got := p.Match(c.s); got != c.want {
			t.Errorf("%q ~ %q = %v, want %v", c.pat, c.s, got, c.want)
		}
	}
}

func TestFields(t *testing.T) {
	f, err := Parse("a AND (itervar:x =~ 1 OR NOT attr:unit =~ s)")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(f.Fields(), ","); got != "name,itervar:x,attr:unit" {
		t.Errorf("Fields = %s", got)
	}
}

// FuzzParse: no expression makes Parse or Match panic or hang, and a
// parsed expression's error-free result is deterministic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"name =~ x", "a AND (b OR NOT c)", `module =~ "**.host[0..3]"`, "itervar:n =~ {1..5}",
		"x{^a-z}y", `"unterminated`, "((((", "=~", `\`, "{..}", "[1..]"} {
		f.Add(s, "Aloha.host[2]")
	}
	f.Fuzz(func(t *testing.T, expr, value string) {
		flt, err := Parse(expr)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error is not a SyntaxError: %v", expr, err)
			}
			return
		}
		it := fields{"name": value, "module": value, "type": value}
		if first, again := flt.Match(it), flt.Match(it); first != again {
			t.Fatal("Match is not deterministic")
		}
	})
}

func FuzzPattern(f *testing.F) {
	for _, s := range []string{"a*b", "{1..9}x", "[2..3]", "{^a-c}", "**", `\{`} {
		f.Add(s, "a1b[2]")
	}
	f.Fuzz(func(t *testing.T, pat, s string) {
		p, err := Compile(pat)
		if err != nil {
			return
		}
		_ = p.Match(s)
		if p.lit && !strings.ContainsAny(pat, `\`) && p.Match(pat) != true {
			t.Fatalf("literal pattern %q does not match itself", pat)
		}
	})
}
