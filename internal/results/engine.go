package results

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/archive"
	"github.com/simswarm/simswarm/internal/engine"
	"github.com/simswarm/simswarm/internal/safedir"
)

// FetchCampaign lays the result files of a campaign's succeeded runs into
// dir, with a provenance file beside them, so that `simswarm results
// <campaign>` reads a campaign straight from the engine, without the
// results directory of the client that ran it. Runs are fetched one at a
// time: memory holds one run's record.
func FetchCampaign(ctx context.Context, eng *engine.Engine, id, dir string) (int, error) {
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
	log := OpenProvenance(dir)
	n := 0
	{
		for _, k := range runKeys {
			r, ok, err := eng.Run(ctx, k)
			if err != nil || !ok {
				continue
			}
			rec := *r
			if camp.Settings.Local != "" && rec.LocalDir != "" {
				// The record of a run key says where its files were written
				// last, which may be another campaign's directory (since
				// removed): this campaign's own directory comes first.
				rec.LocalDir = ownCopy(camp.Settings.Local, rec.LocalDir, rec.Files)
			}
			if err := writeRunFiles(ctx, eng, dir, &rec); err != nil {
				return n, fmt.Errorf("campaign %s run %d: %w", id, rec.Run, err)
			}
			if err := log.Add(ProvenanceOf(&camp, &rec, vars[rec.Run])); err != nil {
				return n, err
			}
			n++
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("campaign %s: %w: no run has succeeded yet", id, ErrNoFiles)
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

func writeRunFiles(ctx context.Context, eng *engine.Engine, dir string, rec *simswarm.RunRecord) error {
	switch {
	case rec.Object != "":
		obj, err := eng.OpenObject(ctx, rec.Object)
		if err != nil {
			return err
		}
		defer obj.Close()
		_, err = archive.Unpack(obj, dir)
		return err
	case rec.LocalDir != "":
		// Written in place on this host by an embedded campaign.
		for _, f := range rec.Files {
			name, err := safedir.CheckName(f.Name)
			if err != nil {
				return err
			}
			if err := copyFile(filepath.Join(rec.LocalDir, filepath.FromSlash(name)), filepath.Join(dir, filepath.FromSlash(name))); err != nil {
				return fmt.Errorf("%s: %w", filepath.Join(rec.LocalDir, filepath.FromSlash(name)), err)
			}
		}
		return nil
	}
	for _, f := range rec.Files {
		name, err := safedir.CheckName(f.Name)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("the only copy of this run's files was in the results directory it ran for: %w", unwrapPath(err))
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
