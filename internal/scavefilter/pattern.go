package scavefilter

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Pattern is one of OMNeT++'s glob-like patterns, matched against a whole
// string:
//
//	?          any one character
//	* or **    any characters (opp_scavetool lets * cross dots too)
//	{a-z_}     one character of a set; {^a-z} one character not in it
//	{250..300} a decimal integer within the range (either bound may be left out)
//	[250..300] the same in square brackets, for module indices
//	\c         the character c itself
type Pattern struct {
	src   string
	elems []elem
	lit   bool // no wildcard at all: compare strings
}

type elemKind uint8

const (
	eLit elemKind = iota
	eAny
	eStar
	eSet
	eNum
	eIndex
)

type elem struct {
	kind   elemKind
	lit    string
	set    []rune // pairs of inclusive bounds
	negate bool
	lo, hi int64 // numeric range; hasLo/hasHi say whether bounded
	hasLo  bool
	hasHi  bool
}

// String returns the pattern as written.
func (p *Pattern) String() string { return p.src }

// Compile parses a pattern.
func Compile(s string) (*Pattern, error) {
	p := &Pattern{src: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p.elems = append(p.elems, elem{kind: eLit, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("pattern ends in a lone backslash")
			}
			lit.WriteByte(s[i+1])
			i += 2
		case c == '?':
			flush()
			p.elems = append(p.elems, elem{kind: eAny})
			i++
		case c == '*':
			flush()
			for i < len(s) && s[i] == '*' {
				i++
			}
			p.elems = append(p.elems, elem{kind: eStar})
		case c == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("pattern %q: '{' without '}'", s)
			}
			body := s[i+1 : i+end]
			flush()
			e, err := braces(body)
			if err != nil {
				return nil, fmt.Errorf("pattern %q: %v", s, err)
			}
			p.elems = append(p.elems, e)
			i += end + 1
		case c == '[':
			// [N..M] is an index range; any other bracket is literal.
			end := strings.IndexByte(s[i:], ']')
			if end > 0 && strings.Contains(s[i+1:i+end], "..") {
				e, err := numRange(s[i+1 : i+end])
				if err == nil {
					flush()
					e.kind = eIndex
					p.elems = append(p.elems, e)
					i += end + 1
					continue
				}
			}
			lit.WriteByte(c)
			i++
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	p.lit = len(p.elems) == 0 || (len(p.elems) == 1 && p.elems[0].kind == eLit)
	return p, nil
}

func braces(body string) (elem, error) {
	if strings.Contains(body, "..") {
		return numRange(body)
	}
	e := elem{kind: eSet}
	rs := []rune(body)
	if len(rs) > 0 && rs[0] == '^' {
		e.negate = true
		rs = rs[1:]
	}
	if len(rs) == 0 {
		return e, errors.New("empty character set {}")
	}
	for i := 0; i < len(rs); i++ {
		lo := rs[i]
		if lo == '\\' && i+1 < len(rs) {
			i++
			lo = rs[i]
		}
		hi := lo
		if i+2 < len(rs) && rs[i+1] == '-' {
			hi = rs[i+2]
			i += 2
		}
		if hi < lo {
			return e, fmt.Errorf("character range %c-%c is reversed", lo, hi)
		}
		e.set = append(e.set, lo, hi)
	}
	return e, nil
}

func numRange(body string) (elem, error) {
	e := elem{kind: eNum}
	a, b, _ := strings.Cut(body, "..")
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	var err error
	if a != "" {
		if e.lo, err = strconv.ParseInt(a, 10, 64); err != nil || e.lo < 0 {
			return e, fmt.Errorf("bad range bound %q: give a non-negative integer", a)
		}
		e.hasLo = true
	}
	if b != "" {
		if e.hi, err = strconv.ParseInt(b, 10, 64); err != nil || e.hi < 0 {
			return e, fmt.Errorf("bad range bound %q: give a non-negative integer", b)
		}
		e.hasHi = true
	}
	if e.hasLo && e.hasHi && e.hi < e.lo {
		return e, fmt.Errorf("range %s is reversed", body)
	}
	return e, nil
}

// Match reports whether the whole of s matches.
func (p *Pattern) Match(s string) bool {
	if p.lit {
		if len(p.elems) == 0 {
			return s == ""
		}
		return s == p.elems[0].lit
	}
	m := matcher{p: p, s: s}
	// Failures are remembered per (element, position), which bounds the
	// work to elements × length whatever the stars.
	n := (len(p.elems) + 1) * (len(s) + 1)
	if n <= len(m.small) {
		m.failed = m.small[:n]
	} else {
		m.failed = make([]bool, n)
	}
	return m.at(0, 0)
}

type matcher struct {
	p      *Pattern
	s      string
	failed []bool
	small  [512]bool
}

func (m *matcher) at(ei, pos int) bool {
	if ei == len(m.p.elems) {
		return pos == len(m.s)
	}
	k := ei*(len(m.s)+1) + pos
	if m.failed[k] {
		return false
	}
	ok := m.try(ei, pos)
	if !ok {
		m.failed[k] = true
	}
	return ok
}

func (m *matcher) try(ei, pos int) bool {
	e := &m.p.elems[ei]
	s := m.s
	switch e.kind {
	case eLit:
		return strings.HasPrefix(s[pos:], e.lit) && m.at(ei+1, pos+len(e.lit))
	case eAny:
		if pos >= len(s) {
			return false
		}
		_, w := decodeRune(s[pos:])
		return m.at(ei+1, pos+w)
	case eStar:
		for q := pos; q <= len(s); q++ {
			if m.at(ei+1, q) {
				return true
			}
		}
		return false
	case eSet:
		if pos >= len(s) {
			return false
		}
		r, w := decodeRune(s[pos:])
		in := false
		for i := 0; i < len(e.set); i += 2 {
			if r >= e.set[i] && r <= e.set[i+1] {
				in = true
				break
			}
		}
		return in != e.negate && m.at(ei+1, pos+w)
	case eNum:
		return m.number(e, ei, pos)
	case eIndex:
		if pos >= len(s) || s[pos] != '[' {
			return false
		}
		end := pos + 1
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		if end == pos+1 || end >= len(s) || s[end] != ']' || !inRange(e, s[pos+1:end]) {
			return false
		}
		return m.at(ei+1, end+1)
	}
	return false
}

// number tries every run of digits at pos whose value is in range.
func (m *matcher) number(e *elem, ei, pos int) bool {
	s := m.s
	end := pos
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	for q := end; q > pos; q-- {
		if inRange(e, s[pos:q]) && m.at(ei+1, q) {
			return true
		}
	}
	return false
}

func inRange(e *elem, digits string) bool {
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return false // too long for int64: beyond any bound one can write
	}
	return (!e.hasLo || v >= e.lo) && (!e.hasHi || v <= e.hi)
}

func decodeRune(s string) (rune, int) {
	for i, r := range s {
		if i == 0 {
			w := len(string(r))
			if r == '\uFFFD' && (len(s) < 3 || s[:3] != "\uFFFD") {
				w = 1 // an invalid byte: step over one
			}
			return r, w
		}
	}
	return 0, 1
}
