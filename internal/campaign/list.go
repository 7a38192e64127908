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
	items, _, err := ParseLines(name, r, results, nil)
	return items, err
}

// ParseLines reads a list as ParseList does, each line beginning with
// len(lead) words of the caller's before the working directory (a
// statistical suite's baseline); lead names them for messages ("a
// baseline"). It returns those words of each item.
func ParseLines(name string, r io.Reader, results string, lead []string) ([]Item, [][]string, error) {
	base := filepath.Dir(name)
	if results == "" {
		results = "results"
	}
	if !filepath.IsAbs(results) {
		results = filepath.Join(base, results)
	}
	results, err := filepath.Abs(results)
	if err != nil {
		return nil, nil, err
	}
	var items []Item
	var leads [][]string
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
			return nil, nil, fmt.Errorf("%s: %v", where, err)
		}
		if len(words) < len(lead)+2 {
			return nil, nil, fmt.Errorf("%s: a line is %sa working directory and a command, e.g. `%s. ./aloha -c PureAlohaExperiment`",
				where, strings.Join(append(append([]string{}, lead...), ""), ", "), strings.Repeat("x ", len(lead)))
		}
		leads = append(leads, words[:len(lead)])
		words = words[len(lead):]
		id := strings.Join(words, "\x00")
		if prev, ok := seen[id]; ok {
			return nil, nil, fmt.Errorf("%s: the same command as line %d", where, prev)
		}
		seen[id] = n
		dir := words[0]
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(base, dir)
		}
		if dir, err = filepath.Abs(dir); err != nil {
			return nil, nil, err
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
		return nil, nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(items) == 0 {
		return nil, nil, fmt.Errorf("%s: the list holds no command", name)
	}
	return items, leads, nil
}
