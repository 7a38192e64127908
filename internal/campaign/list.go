package campaign

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/simswarm/simswarm/internal/shellwords"
)

// ParseList reads a campaign list (simswarm run --list): one command per
// line, its working directory first and then the command, words split as a
// shell splits them (quotes, backslashes; no expansions); blank lines and
// lines starting with # are skipped. Directories are relative to the
// list's own directory. Each item's results go to results/<dir>-<hash>,
// named by the item's directory and a hash of its directory and command, so
// an item keeps its results directory (and its cached runs) wherever it
// moves in the list. Errors name the file and line.
func ParseList(name string, r io.Reader, results string) ([]Item, error) {
	base := filepath.Dir(name)
	if results == "" {
		results = "results"
	}
	if !filepath.IsAbs(results) {
		results = filepath.Join(base, results)
	}
	results, err := filepath.Abs(results)
	if err != nil {
		return nil, err
	}
	var items []Item
	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := fmt.Sprintf("%s:%d", name, n)
		words, err := shellwords.Split(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		if len(words) < 2 {
			return nil, fmt.Errorf("%s: a line is a working directory and a command, e.g. `. ./aloha -c PureAlohaExperiment`", where)
		}
		id := strings.Join(words, "\x00")
		if prev, ok := seen[id]; ok {
			return nil, fmt.Errorf("%s: the same command as line %d", where, prev)
		}
		seen[id] = n
		dir := words[0]
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(base, dir)
		}
		if dir, err = filepath.Abs(dir); err != nil {
			return nil, err
		}
		sum := sha256.Sum256([]byte(id))
		slug := filepath.Base(filepath.Clean(dir))
		if slug == "." || slug == "/" || slug == ".." {
			slug = "item"
		}
		items = append(items, Item{Dir: dir, Argv: words[1:], Label: where,
			Results: filepath.Join(results, slug+"-"+hex.EncodeToString(sum[:4]))})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: the list holds no command", name)
	}
	return items, nil
}
