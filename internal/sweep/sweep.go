// Package sweep expands a simswarm.toml run template: the cartesian product of
// its variables times its repetitions, numbered the way OMNeT++ numbers runs
// (first variable outermost, repetition innermost), and the command line of
// each run.
package sweep

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/simswarm/simswarm"
)

// Size counts the runs of a template command without expanding it: the
// product of the variables' value counts and the repetitions, exact however
// large, so that a campaign can be refused by its size before anything is
// held per run.
func Size(c simswarm.Command) *big.Int {
	n := big.NewInt(int64(repeat(c)))
	for _, v := range c.Vars {
		n.Mul(n, big.NewInt(int64(len(v.Values))))
	}
	return n
}

// Count is the number of runs of a template command, for templates whose
// Size fits in an int (callers check Size first); larger ones count as
// math.MaxInt instead of wrapping around.
func Count(c simswarm.Command) int {
	n := Size(c)
	if !n.IsInt64() || n.Int64() > math.MaxInt {
		return math.MaxInt
	}
	return int(n.Int64())
}

// Factors describes how a template's size comes about, for messages:
// "100 x 100 x 100 values x 1000 repetitions".
func Factors(c simswarm.Command) string {
	var parts []string
	for _, v := range c.Vars {
		parts = append(parts, strconv.Itoa(len(v.Values)))
	}
	s := strings.Join(parts, " x ")
	if s != "" {
		s += " values x "
	}
	return s + strconv.Itoa(repeat(c)) + " repetitions"
}

func repeat(c simswarm.Command) int {
	if c.Repeat < 1 {
		return 1
	}
	return c.Repeat
}

// Values returns the variables of run n, repetition included, in order.
func Values(c simswarm.Command, n int) [][2]string {
	out := make([][2]string, len(c.Vars)+1)
	rep := repeat(c)
	out[len(c.Vars)] = [2]string{"repetition", strconv.Itoa(n % rep)}
	n /= rep
	for i := len(c.Vars) - 1; i >= 0; i-- {
		v := c.Vars[i]
		out[i] = [2]string{v.Name, v.Values[n%len(v.Values)]}
		n /= len(v.Values)
	}
	return out
}

// Describe renders run n's variables as OMNeT++ prints them with -q runs.
func Describe(c simswarm.Command, n int) string {
	var parts []string
	for _, kv := range Values(c, n) {
		parts = append(parts, "$"+kv[0]+"="+kv[1])
	}
	return strings.Join(parts, ", ")
}

// Expand returns the shell command of run n writing into resultdir.
func Expand(c simswarm.Command, n int, resultdir string) (string, error) {
	if n < 0 || n >= Count(c) {
		return "", fmt.Errorf("run %d out of range 0..%d", n, Count(c)-1)
	}
	vals := map[string]string{"run": strconv.Itoa(n), "resultdir": resultdir}
	for _, kv := range Values(c, n) {
		vals[kv[0]] = kv[1]
	}
	var args []string
	for _, a := range c.Args {
		args = append(args, Quote(a))
	}
	var b strings.Builder
	t := c.Template
	for {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			b.WriteString(t)
			break
		}
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			b.WriteString(t)
			break
		}
		name := t[i+1 : i+j]
		b.WriteString(t[:i])
		switch v, ok := vals[name]; {
		case name == "args":
			b.WriteString(strings.Join(args, " "))
		case ok:
			b.WriteString(Quote(v))
		default:
			// Not a placeholder: keep the brace and look for one inside,
			// as the template check does ({ echo {x}; }).
			b.WriteByte('{')
			t = t[i+1:]
			continue
		}
		t = t[i+j+1:]
	}
	return b.String(), nil
}

// Quote makes s one word for /bin/sh, leaving plain words readable.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,/:=+@%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
