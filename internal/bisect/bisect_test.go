package bisect

import "testing"

// TestPick: for every range up to 64 commits, every first bad commit and
// 1 to 8 slots, the rounds find that commit, within Rounds, and 4 slots
// take at most 2 rounds on 15 commits (log base 5 of 15, rounded up).
func TestPick(t *testing.T) {
	for n := 1; n <= 64; n++ {
		for first := 1; first <= n; first++ {
			for slots := 1; slots <= 8; slots++ {
				states := make([]State, n+1)
				states[0], states[n] = Good, Bad
				rounds := 0
				for {
					idx := pick(states, slots)
					if len(idx) == 0 {
						break
					}
					if len(idx) > slots {
						t.Fatalf("n=%d slots=%d: a round of %d", n, slots, len(idx))
					}
					rounds++
					for _, i := range idx {
						if states[i] != Untested {
							t.Fatalf("n=%d: commit %d tested twice", n, i)
						}
						states[i] = Good
						if i >= first {
							states[i] = Bad
						}
					}
				}
				if _, hi := bounds(states); hi != first {
					t.Fatalf("n=%d first=%d slots=%d: found %d", n, first, slots, hi)
				}
				if max(rounds, 1) > Rounds(n, slots) {
					t.Errorf("n=%d first=%d slots=%d: %d rounds, Rounds says at most %d", n, first, slots, rounds, Rounds(n, slots))
				}
			}
		}
	}
	if r := Rounds(15, 4); r != 2 {
		t.Errorf("15 commits, 4 slots: %d rounds", r)
	}
	if r := Rounds(64, 1); r != 6 {
		t.Errorf("64 commits, 1 slot: %d rounds, want log2(64) = 6", r)
	}
}

// TestSkipped: commits that cannot be tested are left out of later
// rounds, and the range ends between a good and a bad commit with the
// skipped ones in between.
func TestSkipped(t *testing.T) {
	states := []State{Good, Skip, Skip, Untested, Bad}
	if idx := pick(states, 4); len(idx) != 1 || idx[0] != 3 {
		t.Fatalf("picked %v, want [3]", idx)
	}
	states[3] = Bad
	if lo, hi := bounds(states); lo != 0 || hi != 3 || len(pick(states, 4)) != 0 {
		t.Errorf("bounds %d %d", lo, hi)
	}
}
