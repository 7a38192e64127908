package precision

import (
	"math"
	"strings"
	"testing"
)

// FuzzParseTarget: whatever --until is given, it is refused with one line
// naming it, or read into a target whose level and bound make sense.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"Aloha.server.channelUtilization:last ci95 < 5%", "x ci99.9 <= 0.01", "a ci95 > 1", "ci95 < 5%",
		"x ci100 < 1", "x ci95 < NaN", "x ci95 < -1%", `"name with spaces" ci90 < 2`, "x ci95 < 1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") && !strings.Contains(s, "\n") {
				t.Fatalf("error of %q is not one line: %q", s, err)
			}
			return
		}
		if tg.Scalar == "" || !(tg.Level >= 0.5 && tg.Level < 1) || !(tg.Bound > 0) || math.IsInf(tg.Bound, 0) {
			t.Fatalf("ParseTarget(%q) = %+v", s, tg)
		}
	})
}
