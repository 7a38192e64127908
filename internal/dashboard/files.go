package dashboard

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/klauspost/compress/zstd"
	"github.com/simswarm/simswarm"
	"github.com/simswarm/simswarm/internal/archive"
	"golang.org/x/sys/unix"
)

// serveFile sends one result file of a run: from the run record (small
// files travel inline), from the run's results archive in the store, or,
// in embedded mode, from the results directory the runner wrote into.
// Files are user data: they go out as downloads, or as plain text with
// ?view=1, never as something a browser would render as a page.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	id, name := r.PathValue("id"), r.PathValue("name")
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil {
		s.notFound(w, r, "There is no such run.")
		return
	}
	ctx := r.Context()
	rec, ok, err := s.eng.RunStatus(ctx, id, n)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	var size int64 = -1
	for _, f := range recFiles(rec) {
		if f.Name == name {
			size = f.Size
		}
	}
	if !ok || size < 0 {
		s.notFound(w, r, "Run "+strconv.Itoa(n)+" of campaign "+strconv.Quote(id)+" has no result file "+strconv.Quote(name)+".")
		return
	}
	full, found, err := s.eng.Run(ctx, rec.Key)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	if !found {
		full = rec
	}
	header := func(size int64) {
		h := w.Header()
		h.Set("Content-Security-Policy", "sandbox")
		if r.URL.Query().Get("view") != "" {
			h.Set("Content-Type", "text/plain; charset=utf-8")
		} else {
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(name)}))
		}
		h.Set("Content-Length", strconv.FormatInt(size, 10))
	}
	for _, f := range full.Files {
		if f.Name == name && int64(len(f.Data)) == f.Size && (f.Size > 0 || full.Object == "" && full.LocalDir == "") {
			header(f.Size)
			_, _ = w.Write(f.Data)
			return
		}
	}
	if full.Object != "" {
		if err := s.fromArchive(w, r, full.Object, name, header); err == nil {
			return
		} else if !errors.Is(err, errNotFound) {
			s.fail(w, r, http.StatusBadGateway, err)
			return
		}
	}
	if full.LocalDir != "" && s.opt.LocalFiles {
		clean, err := archive.Clean(name)
		if err == nil {
			// Not through a link: a simulation could plant one to any file
			// of the user the dashboard runs as.
			f, err := os.OpenFile(filepath.Join(full.LocalDir, filepath.FromSlash(clean)), os.O_RDONLY|unix.O_NOFOLLOW, 0)
			if err == nil {
				defer f.Close()
				if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
					header(fi.Size())
					_, _ = io.Copy(w, f)
					return
				}
			}
		}
	}
	where := "the store"
	if full.LocalDir != "" {
		where = full.LocalDir + " on " + full.Host
	}
	s.notFound(w, r, "The file "+strconv.Quote(name)+" is not available to this dashboard (it is in "+where+").")
}

// fromArchive streams one file out of a results archive (zstd tar).
func (s *Server) fromArchive(w http.ResponseWriter, r *http.Request, object, name string, header func(int64)) error {
	obj, err := s.eng.OpenObject(r.Context(), object)
	if err != nil {
		return err
	}
	defer obj.Close()
	zr, err := zstd.NewReader(obj)
	if err != nil {
		return fmt.Errorf("read %s: %w", object, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return errNotFound
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", object, err)
		}
		if hdr.Name != name || hdr.Typeflag != tar.TypeReg {
			continue
		}
		header(hdr.Size)
		_, _ = io.Copy(w, tr)
		return nil
	}
}

// serveBuildLog sends the full output of the build that made a campaign's
// artifact, as plain text.
func (s *Server) serveBuildLog(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, err := s.campaignRecord(r.Context(), id)
	if errors.Is(err, errNotFound) {
		s.notFound(w, r, "There is no campaign "+strconv.Quote(id)+" in this engine.")
		return
	}
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	b := s.build(r.Context(), c.Artifact)
	if b == nil || b.Log == "" {
		s.notFound(w, r, "No build log is stored for campaign "+strconv.Quote(id)+".")
		return
	}
	var buf bytes.Buffer
	if err := s.eng.GetObject(r.Context(), b.Log, &buf); err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "sandbox")
	_, _ = w.Write(buf.Bytes())
}

// recFiles is a record's files; none when there is no record.
func recFiles(rec *simswarm.RunRecord) []simswarm.File {
	if rec == nil {
		return nil
	}
	return rec.Files
}
