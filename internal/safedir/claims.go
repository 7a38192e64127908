package safedir

import (
	"fmt"
	"hash/maphash"
	"sync"
)

// ClaimError is a run's file that another run of the same campaign has
// already put in place: two runs naming one result file would leave one of
// them silently (the last to finish), so the second is refused before it
// replaces anything.
type ClaimError struct {
	Campaign string
	Name     string
	Run      int // the run refused
	By       int // the run whose file it is
}

func (e *ClaimError) Error() string {
	return fmt.Sprintf("runs %d and %d of campaign %s both write %s: the file of run %d stays, run %d's is refused; give each run its own file name (its run number in it: {run} in a simswarm.toml command, ${runnumber} in OMNeT++'s output file options)",
		e.By, e.Run, e.Campaign, e.Name, e.By, e.Run)
}

// claims remembers, for this process, which run of a campaign put each
// file in a directory. Embedded, the runner that writes results in place
// and the client that fetches them share it. Names are kept as hashes:
// 16 bytes an entry, not the name, for campaigns of 100 000 runs.
var claims = struct {
	sync.Mutex
	seed maphash.Seed
	by   map[string]map[uint64]int // directory + campaign -> hash of name -> run
}{seed: maphash.MakeSeed(), by: map[string]map[uint64]int{}}

// CommitFor commits the set as run's files of campaign (see Commit),
// refused with a *ClaimError when another run of the campaign put one of
// the same names in place before.
func (s *Stage) CommitFor(campaign string, run int) error {
	claims.Lock()
	defer claims.Unlock()
	key := s.d.path + "\x00" + campaign
	mine := claims.by[key]
	hashes := make([]uint64, len(s.moves))
	for i, m := range s.moves {
		hashes[i] = maphash.String(claims.seed, m.dst)
		if by, ok := mine[hashes[i]]; ok && by != run {
			defer func() { s.moves, s.dst, s.links = nil, map[string]bool{}, map[string]bool{} }()
			return &ClaimError{Campaign: campaign, Name: m.dst, Run: run, By: by}
		}
	}
	if err := s.Commit(); err != nil {
		return err
	}
	if mine == nil {
		mine = map[uint64]int{}
		claims.by[key] = mine
	}
	for _, h := range hashes {
		mine[h] = run
	}
	return nil
}

// Claimed notes that run's files of campaign are in dir already (a run
// done before this process started), so that another run of the campaign
// naming one of them is refused too.
func Claimed(dir, campaign string, run int, names []string) {
	claims.Lock()
	defer claims.Unlock()
	key := dir + "\x00" + campaign
	mine := claims.by[key]
	if mine == nil {
		mine = map[uint64]int{}
		claims.by[key] = mine
	}
	for _, n := range names {
		mine[maphash.String(claims.seed, n)] = run
	}
}
