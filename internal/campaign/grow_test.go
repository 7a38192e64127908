package campaign

import (
	"testing"

	"github.com/simswarm/simswarm"
)

func TestRenumbered(t *testing.T) {
	files := []simswarm.File{{Name: "Grow-#2.out"}, {Name: "sub/Grow-#2.sca"}, {Name: "Grow-numHosts=10-#2.sca"}, {Name: "Grow-#21.vec"}, {Name: "Other-#2.sca"}}
	got := renumbered(files, "Grow", 2, 7)
	want := []string{"Grow-#7.out", "sub/Grow-#7.sca", "Grow-numHosts=10-#2.sca", "Grow-#21.vec", "Other-#2.sca"}
	for i := range want {
		if got[i].Name != want[i] {
			t.Errorf("%s -> %s, want %s", files[i].Name, got[i].Name, want[i])
		}
	}
	if files[0].Name != "Grow-#2.out" {
		t.Error("renumbered changed its input")
	}
}
