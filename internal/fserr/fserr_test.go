package fserr

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWithoutPath(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	_, err := os.Open(missing)
	got := WithoutPath(fmt.Errorf("reading: %w", err))
	if got.Error() != "no such file or directory" || !errors.Is(got, fs.ErrNotExist) {
		t.Fatalf("WithoutPath(%v) = %v", err, got)
	}
	other := errors.New("disk on fire")
	if WithoutPath(other) != other {
		t.Fatal("an error without a path must come back as it is")
	}
}
