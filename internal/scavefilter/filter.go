// Package scavefilter parses and evaluates opp_scavetool's filter
// expressions (`opp_scavetool help filter`): `<pattern>` and
// `<field> =~ <pattern>` terms combined with AND, OR, NOT and parentheses,
// where a plain pattern means `name =~ <pattern>`. Patterns are OMNeT++'s
// glob-like patterns, matched against the whole value, case-sensitively.
//
// The behaviour follows OMNeT++ 6.1's opp_scavetool as observed, not only
// its help text: `*` matches dots too (`module =~ *server` matches
// `Aloha.server`), keywords are case-insensitive, only double quotes quote,
// and an unknown field name is an error.
package scavefilter

import (
	"fmt"
	"strings"
)

// Item is what a filter looks at: one result item and its run.
type Item interface {
	// Field returns the value of a field (file, run, type, module, name)
	// or of a prefixed name (runattr:, itervar:, config:, attr:), and
	// whether the item has it.
	Field(name string) (string, bool)
}

// Filter is a parsed expression. The zero value (and a filter parsed from
// an empty string) matches everything.
type Filter struct {
	root node
	src  string
}

// String returns the expression as given.
func (f *Filter) String() string { return f.src }

// Match reports whether it matches the item.
func (f *Filter) Match(it Item) bool {
	if f == nil || f.root == nil {
		return true
	}
	return f.root.match(it)
}

// Fields lists the field names the filter looks at, so that a reader can
// tell whether it needs, say, run configuration or result attributes.
func (f *Filter) Fields() []string {
	if f == nil || f.root == nil {
		return nil
	}
	var out []string
	var walk func(n node)
	walk = func(n node) {
		switch n := n.(type) {
		case *term:
			out = append(out, n.field)
		case *not:
			walk(n.x)
		case *binary:
			walk(n.l)
			walk(n.r)
		}
	}
	walk(f.root)
	return out
}

// SyntaxError is a malformed expression; Pos is the 1-based character
// position where it went wrong.
type SyntaxError struct {
	Expr string
	Pos  int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("filter %q: %s at character %d", e.Expr, e.Msg, e.Pos)
}

// plainFields are the fields that take no prefix.
var plainFields = map[string]bool{"file": true, "run": true, "type": true, "module": true, "name": true}

// prefixes are the field families with a name after the colon.
var prefixes = []string{"runattr:", "itervar:", "config:", "attr:"}

func validField(f string) bool {
	if plainFields[f] {
		return true
	}
	for _, p := range prefixes {
		if strings.HasPrefix(f, p) && len(f) > len(p) {
			return true
		}
	}
	return false
}

type node interface{ match(Item) bool }

type term struct {
	field string
	pat   *Pattern
}

func (t *term) match(it Item) bool {
	v, ok := it.Field(t.field)
	return ok && t.pat.Match(v)
}

type not struct{ x node }

func (n *not) match(it Item) bool { return !n.x.match(it) }

type binary struct {
	and  bool
	l, r node
}

func (b *binary) match(it Item) bool {
	if b.and {
		return b.l.match(it) && b.r.match(it)
	}
	return b.l.match(it) || b.r.match(it)
}

// Parse parses an expression. An empty or all-blank expression matches
// everything.
func Parse(expr string) (*Filter, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	f := &Filter{src: expr}
	if len(toks) == 0 {
		return f, nil
	}
	p := &parser{expr: expr, toks: toks}
	root, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, p.errAt(p.toks[p.i], "unexpected "+p.toks[p.i].describe())
	}
	f.root = root
	return f, nil
}

type tokKind int

const (
	tWord  tokKind = iota // a pattern or field name, unquoted
	tQuote                // a quoted pattern
	tMatch                // =~
	tLParen
	tRParen
	tAnd
	tOr
	tNot
)

type token struct {
	kind tokKind
	text string
	pos  int // 1-based
}

func (t token) describe() string {
	switch t.kind {
	case tMatch:
		return "'=~'"
	case tLParen:
		return "'('"
	case tRParen:
		return "')'"
	case tAnd, tOr, tNot:
		return strings.ToUpper(t.text)
	case tQuote:
		return fmt.Sprintf("%q", t.text)
	}
	return fmt.Sprintf("'%s'", t.text)
}

func lex(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			out = append(out, token{tLParen, "(", i + 1})
			i++
		case c == ')':
			out = append(out, token{tRParen, ")", i + 1})
			i++
		case c == '=' && i+1 < len(s) && s[i+1] == '~':
			out = append(out, token{tMatch, "=~", i + 1})
			i += 2
		case c == '"':
			start := i
			var b strings.Builder
			i++
			closed := false
			for i < len(s) {
				if s[i] == '\\' && i+1 < len(s) {
					// The backslash stays: inside a pattern it escapes the
					// next character for the pattern matcher.
					b.WriteByte(s[i])
					b.WriteByte(s[i+1])
					i += 2
					continue
				}
				if s[i] == '"' {
					closed = true
					i++
					break
				}
				b.WriteByte(s[i])
				i++
			}
			if !closed {
				return nil, &SyntaxError{Expr: s, Pos: start + 1, Msg: "unterminated quoted pattern"}
			}
			out = append(out, token{tQuote, b.String(), start + 1})
		default:
			start := i
			for i < len(s) {
				c := s[i]
				if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(' || c == ')' || c == '"' ||
					(c == '=' && i+1 < len(s) && s[i+1] == '~') {
					break
				}
				if c == '\\' && i+1 < len(s) {
					i += 2
					continue
				}
				i++
			}
			w := s[start:i]
			k := tWord
			switch strings.ToLower(w) {
			case "and":
				k = tAnd
			case "or":
				k = tOr
			case "not":
				k = tNot
			}
			out = append(out, token{k, w, start + 1})
		}
	}
	return out, nil
}

type parser struct {
	expr string
	toks []token
	i    int
}

func (p *parser) errAt(t token, msg string) error {
	return &SyntaxError{Expr: p.expr, Pos: t.pos, Msg: msg}
}

func (p *parser) errEnd(msg string) error {
	return &SyntaxError{Expr: p.expr, Pos: len(p.expr) + 1, Msg: msg}
}

func (p *parser) peek() (token, bool) {
	if p.i >= len(p.toks) {
		return token{}, false
	}
	return p.toks[p.i], true
}

func (p *parser) or() (node, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for {
		t, ok := p.peek()
		if !ok || t.kind != tOr {
			return l, nil
		}
		p.i++
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = &binary{l: l, r: r}
	}
}

func (p *parser) and() (node, error) {
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		t, ok := p.peek()
		if !ok || t.kind != tAnd {
			return l, nil
		}
		p.i++
		r, err := p.unary()
		if err != nil {
			return nil, err
		}
		l = &binary{and: true, l: l, r: r}
	}
}

func (p *parser) unary() (node, error) {
	t, ok := p.peek()
	if !ok {
		return nil, p.errEnd("expression ends where a pattern was expected")
	}
	switch t.kind {
	case tNot:
		p.i++
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &not{x: x}, nil
	case tLParen:
		p.i++
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		c, ok := p.peek()
		if !ok {
			return nil, p.errEnd("missing ')'")
		}
		if c.kind != tRParen {
			return nil, p.errAt(c, "expected ')', found "+c.describe())
		}
		p.i++
		return x, nil
	case tWord, tQuote:
		p.i++
		field, text := "name", t.text
		if m, ok := p.peek(); ok && m.kind == tMatch {
			if t.kind == tQuote {
				return nil, p.errAt(t, "a field name cannot be quoted")
			}
			field = t.text
			if !validField(field) {
				return nil, p.errAt(t, fmt.Sprintf("unknown field %q (use file, run, type, module, name, runattr:NAME, itervar:NAME, config:NAME or attr:NAME)", field))
			}
			p.i++
			v, ok := p.peek()
			if !ok {
				return nil, p.errEnd("expression ends where a pattern was expected after '=~'")
			}
			if v.kind != tWord && v.kind != tQuote {
				return nil, p.errAt(v, "expected a pattern after '=~', found "+v.describe())
			}
			p.i++
			text = v.text
		}
		pat, err := Compile(text)
		if err != nil {
			return nil, p.errAt(t, err.Error())
		}
		return &term{field: field, pat: pat}, nil
	}
	return nil, p.errAt(t, "unexpected "+t.describe())
}
