package simswarm

import "testing"

func TestToken(t *testing.T) {
	for in, want := range map[string]string{"node-1.example.org": "node-1_example_org", "a b/c*>": "a_b_c__", "": "_", "..": "__", "inet4.5-0a1b": "inet4_5-0a1b"} {
		if got := Token(in); got != want {
			t.Errorf("Token(%q) = %q, want %q", in, got, want)
		}
	}
}
