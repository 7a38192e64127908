package campaign

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/results"
	"github.com/simswarm/simswarm/internal/safedir"
)

// Fetch lays the result files of a campaign's succeeded runs into dir, with
// a provenance file beside them, so that `simswarm results CAMPAIGN` reads
// a campaign straight from the engine, without the results directory of
// the client that ran it. The files land as a campaign's own do (land).
// Runs are fetched one at a time: memory holds one run's record.
func Fetch(ctx context.Context, eng *engine.Engine, id, dir string) (int, error) {
	cp, ok, err := eng.Campaign(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("campaign %s: %w", id, err)
	}
	if !ok {
		return 0, fmt.Errorf("no campaign %s on this engine (simswarm status lists them)", id)
	}
	camp := *cp
	vars := map[int]string{}
	if camp.Command.Kind == simswarm.KindOmnetpp {
		if l, ok, _ := eng.RunList(ctx, simswarm.ListKey(camp.Artifact, camp.Workdir, camp.Command)); ok {
			for i, n := range l.Runs {
				if i < len(l.Vars) {
					vars[n] = l.Vars[i]
				}
			}
		}
	}
	// The succeeded runs' keys first (a few bytes each), then one full
	// record at a time.
	var runKeys []string
	err = eng.Each(ctx, engine.BucketStatus, id+".*", func(_ string, v []byte) {
		var st simswarm.RunRecord
		if json.Unmarshal(v, &st) == nil && st.State == simswarm.RunSucceeded {
			runKeys = append(runKeys, st.Key)
		}
	})
	if err != nil {
		return 0, fmt.Errorf("campaign %s: list runs: %w", id, err)
	}
	log := results.OpenProvenance(dir)
	var stages safedir.Pool
	defer stages.Close()
	n := 0
	for _, k := range runKeys {
		r, ok, err := eng.Run(ctx, k)
		if err != nil || !ok {
			continue
		}
		rec := *r
		// The record of a run key may belong to another campaign that ran
		// the same run: this campaign's names are the ones it lands under.
		rec.Campaign = id
		if camp.Settings.Local != "" && rec.LocalDir != "" {
			// The record of a run key says where its files were written
			// last, which may be another campaign's directory (since
			// removed): this campaign's own directory comes first.
			rec.LocalDir = ownCopy(camp.Settings.Local, rec.LocalDir, rec.Files)
		}
		if err := land(ctx, eng, &stages, dir, &rec); err != nil {
			return n, fmt.Errorf("campaign %s run %d: %w", id, rec.Run, err)
		}
		if err := log.Add(results.ProvenanceOf(&camp, &rec, vars[rec.Run])); err != nil {
			return n, err
		}
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("campaign %s: %w: no run has succeeded yet", id, results.ErrNoFiles)
	}
	return n, nil
}

// ownCopy is own when it holds all of files, else last. Sizes are not
// compared: a later execution of the same run may differ in its headers
// (date, process id).
func ownCopy(own, last string, files []simswarm.File) string {
	for _, f := range files {
		name, err := safedir.CheckName(f.Name)
		if err != nil {
			return last
		}
		if fi, err := os.Stat(filepath.Join(own, filepath.FromSlash(name))); err != nil || !fi.Mode().IsRegular() {
			return last
		}
	}
	return own
}
