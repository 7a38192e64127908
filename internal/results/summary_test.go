package results

import (
	"math"
	"testing"
)

// Quantiles of Student's t from the standard tables.
func TestStudentT(t *testing.T) {
	for _, c := range []struct {
		df   int
		want float64
	}{{1, 12.7062}, {2, 4.3027}, {4, 2.7764}, {9, 2.2622}, {10, 2.2281}, {30, 2.0423}, {100, 1.9840}, {100000, 1.9600}} {
		if got := StudentT(0.975, c.df); math.Abs(got-c.want) > 5e-5 {
			t.Errorf("t(0.975, %d) = %.5f, want %.4f", c.df, got, c.want)
		}
	}
	if got := StudentT(0.025, 9); math.Abs(got+2.2622) > 5e-5 {
		t.Errorf("t(0.025, 9) = %v", got)
	}
	if !math.IsNaN(StudentT(0.975, 0)) {
		t.Error("t with 0 degrees of freedom should be NaN")
	}
}

func TestAcc(t *testing.T) {
	var a, b, all Acc
	xs := []float64{2, 4, 4, 4, 5, 5, 7, 9}
	for i, x := range xs {
		all.Add(x)
		if i < 3 {
			a.Add(x)
		} else {
			b.Add(x)
		}
	}
	a.Merge(b)
	for _, acc := range []Acc{all, a} {
		if acc.N != 8 || acc.Mean() != 5 || math.Abs(acc.Stddev()-math.Sqrt(32.0/7)) > 1e-12 || acc.Min != 2 || acc.Max != 9 {
			t.Errorf("n=%d mean=%v sd=%v min=%v max=%v", acc.N, acc.Mean(), acc.Stddev(), acc.Min, acc.Max)
		}
	}
	// 95 % half-width: t(0.975, 7) × s / √8.
	if hw := all.HalfWidth(0.95); math.Abs(hw-2.364624*math.Sqrt(32.0/7)/math.Sqrt(8)) > 1e-5 {
		t.Errorf("half-width %v", hw)
	}
	var one Acc
	one.Add(3)
	if !math.IsNaN(one.Stddev()) || !math.IsNaN(one.HalfWidth(0.95)) {
		t.Error("one value has no spread")
	}
}
