package precision

import (
	"math"

	"github.com/simswarm/simswarm/internal/results"
)

// FirstRound is the repetitions every combination gets before its
// precision is looked at. Three, not two: with two the interval rests on
// one degree of freedom (t = 12.7 for 95 %), its standard deviation is a
// guess, and the estimate of how many repetitions are needed is mostly
// noise; with three, t = 4.3 and the first estimate is usable.
const FirstRound = 3

// Next is how many repetitions a combination should have after the next
// round, for one target, given the n it has and the standard deviation
// and mean its values show: the smallest count whose interval, with the
// same standard deviation, would reach the target, but at least one more
// and at most twice n (and never more than max).
//
// Why estimated and bounded: doubling alone overshoots by up to 2x when a
// combination is nearly there, and one more repetition per round makes as
// many rounds as repetitions; the estimate lands close in one round when
// the standard deviation is known well, and the cap of 2n keeps a
// standard deviation underestimated from a few values from asking for far
// too many runs at once (no more than the runs already spent). A
// combination whose spread cannot be estimated (n < 2) doubles.
func Next(n int, acc *results.Acc, t Target, max int) int {
	if n >= max {
		return n
	}
	hi := min(2*n, max)
	if hi <= n {
		hi = n + 1
	}
	if acc == nil || acc.N < 2 {
		return hi
	}
	s := acc.Stddev()
	bound := t.Absolute(acc.Mean())
	if math.IsNaN(s) || bound <= 0 || math.IsNaN(bound) {
		return hi
	}
	reaches := func(k int) bool {
		h := results.StudentT(1-(1-t.Level)/2, k-1) * s / math.Sqrt(float64(k))
		if t.Inclusive {
			return h <= bound
		}
		return h < bound
	}
	if !reaches(hi) {
		return hi
	}
	// The half-width falls as k grows: the smallest k that reaches it.
	lo := n + 1
	for lo < hi {
		mid := (lo + hi) / 2
		if reaches(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return hi
}
