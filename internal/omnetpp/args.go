package omnetpp

import (
	"strconv"
	"strings"
)

// The argument helpers read an argument list the way OMNeT++ 6's own parser
// (envir ArgList) does, so that they find exactly the options the simulation
// will see:
//
//   - A short option is "-x". Those that take a value (f u l c r n x i p q e,
//     and h optionally) accept it joined ("-r3", "-cFoo") or as the next
//     argument ("-r 3"); the next argument is taken even if it starts with
//     "-". Other short options ("-s", "-a", "-v") take no value.
//   - A long option is "--name=value" or "--name value": without "=" it
//     consumes the next argument as its value, unless it is the last one.
//   - "--" alone ends the options; everything after it is positional, as are
//     arguments not starting with "-" (ini files), which do not end the
//     options.
//   - When an option is repeated, the last one wins.
//
// "--run=X" or "--config=X" are not OMNeT++ options (they would be taken as
// config settings named "run"/"config"), so they are not recognised here.

// shortWithValue lists the short options that take a value in OMNeT++ 6
// (its ARGSPEC "h?f:u:l:c:r:n:x:i:q:e:avwsm", plus p from earlier 6.x).
const shortWithValue = "hfulcrnxipqe"

// arg is one option or positional argument found in an argument list.
type arg struct {
	start, end int    // args[start:end] holds it (one or two elements)
	name       string // "-r", "--result-dir"; "" for a positional argument
	value      string
	missing    bool // an option that takes a value came last, without one
}

// scanArgs splits args into options and positional arguments.
func scanArgs(args []string) []arg {
	var out []arg
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			for j := i; j < len(args); j++ {
				out = append(out, arg{start: j, end: j + 1, value: args[j]})
			}
			return out
		case strings.HasPrefix(a, "--"):
			if name, v, ok := strings.Cut(a, "="); ok {
				out = append(out, arg{start: i, end: i + 1, name: name, value: v})
			} else if i+1 < len(args) {
				out = append(out, arg{start: i, end: i + 2, name: a, value: args[i+1]})
				i++
			} else {
				out = append(out, arg{start: i, end: i + 1, name: a})
			}
		case len(a) >= 2 && a[0] == '-':
			name := a[:2]
			if !strings.Contains(shortWithValue, a[1:2]) {
				out = append(out, arg{start: i, end: i + 1, name: name, value: a[2:]})
			} else if len(a) > 2 {
				out = append(out, arg{start: i, end: i + 1, name: name, value: a[2:]})
			} else if i+1 < len(args) {
				out = append(out, arg{start: i, end: i + 2, name: name, value: args[i+1]})
				i++
			} else {
				out = append(out, arg{start: i, end: i + 1, name: name, missing: a[1] != 'h'})
			}
		default:
			out = append(out, arg{start: i, end: i + 1, value: a})
		}
	}
	return out
}

// MissingValue returns the first option that takes a value but ends args
// without one ("-r" last), or "". OMNeT++ would ignore it silently: a
// trailing -r would run every run.
func MissingValue(args []string) string {
	for _, a := range scanArgs(args) {
		if a.missing {
			return a.name
		}
	}
	return ""
}

// normName turns a caller's option name into scanArgs form: "-s" and
// "--result-dir" stay, a bare "result-dir" or "s" gets its dashes.
func normName(name string) string {
	switch {
	case strings.HasPrefix(name, "-"):
		return name
	case len(name) == 1:
		return "-" + name
	default:
		return "--" + name
	}
}

// RunFilter returns the run filter among args (the last "-r" value) and the
// args without any -r option. A "--cmdenv-runs-to-execute" setting is the
// ini-file form of -r: it is used when there is no -r and removed as well,
// so that a -r the caller appends to rest alone decides which runs execute.
// rest is a new slice; args is not modified.
func RunFilter(args []string) (filter string, rest []string, found bool) {
	var fromConfig string
	haveConfig := false
	rest = make([]string, 0, len(args))
	next := 0
	for _, a := range scanArgs(args) {
		switch a.name {
		case "-r":
			filter, found = a.value, true
		case "--cmdenv-runs-to-execute":
			fromConfig, haveConfig = a.value, true
		default:
			continue
		}
		rest = append(rest, args[next:a.start]...)
		next = a.end
	}
	rest = append(rest, args[next:]...)
	if !found && haveConfig {
		return fromConfig, rest, true
	}
	return filter, rest, found
}

// ConfigName returns the config the args select: the last -c, else a
// "--cmdenv-config-name" setting, else "General" (also for an empty -c, as
// OMNeT++ does). A cmdenv-config-name inside the ini file is not seen here.
func ConfigName(args []string) string {
	name, fromConfig := "", ""
	haveC := false
	for _, a := range scanArgs(args) {
		switch a.name {
		case "-c":
			name, haveC = a.value, true
		case "--cmdenv-config-name":
			fromConfig = a.value
		}
	}
	if !haveC {
		name = fromConfig
	}
	if name == "" {
		return "General"
	}
	return name
}

// HasOption reports whether args contain the option name: a flag such as
// "-s" or "-q", or a long option such as "--result-dir" in either its
// "--result-dir=DIR" or "--result-dir DIR" form. Names without dashes are
// accepted too ("s", "result-dir").
func HasOption(args []string, name string) bool {
	_, ok := OptionValue(args, name)
	return ok
}

// OptionValue returns the value of the last occurrence of option name in
// args ("" for a flag), and whether it occurs at all. Names are as for
// HasOption.
func OptionValue(args []string, name string) (string, bool) {
	name = normName(name)
	value, found := "", false
	for _, a := range scanArgs(args) {
		if a.name == name {
			value, found = a.value, true
		}
	}
	return value, found
}

// RunNumberArg renders run numbers as a -r value: "3" or "3,4,5", in the
// given order (OMNeT++ runs them in list order).
func RunNumberArg(runs []int) string {
	var b strings.Builder
	for i, r := range runs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(r))
	}
	return b.String()
}
