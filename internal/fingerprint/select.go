package fingerprint

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Selection picks tests the way INET's tooling does: a regular expression
// over the test's working directory and arguments (matched against the
// test's ID, "examples/ethernet/lans -f bus.ini ...", and against what INET's
// fingerprinttest -m matches, the directory as written, the arguments and
// the tags: "/examples/ethernet/lans/ -f bus.ini ... EthernetMac", so a
// regex written for INET's tool selects the same tests), and tags that
// must all be present.
type Selection struct {
	Match *regexp.Regexp // nil: every test
	Tags  []string       // every one must be among the test's tags
}

// NewSelection compiles a --match expression.
func NewSelection(match string, tags []string) (Selection, error) {
	s := Selection{Tags: tags}
	if match != "" {
		re, err := regexp.Compile(match)
		if err != nil {
			return s, fmt.Errorf("--match %q: %v", match, err)
		}
		s.Match = re
	}
	return s, nil
}

// Has reports whether t is selected.
func (s Selection) Has(t *Test) bool {
	if s.Match != nil && !s.Match.MatchString(t.ID()) && !s.Match.MatchString(t.Dir+" "+t.Args+" "+strings.Join(t.Tags, " ")) {
		return false
	}
	for _, tag := range s.Tags {
		if !slices.Contains(t.Tags, tag) {
			return false
		}
	}
	return true
}
