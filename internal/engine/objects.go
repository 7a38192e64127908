package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Object names in the blob store.
func FileObject(hash string) string     { return "file/" + hash }
func SnapshotObject(key string) string  { return "snap/" + key }
func ArtifactObject(key string) string  { return "art/" + key }
func ResultObject(runKey string) string { return "res/" + runKey }
func BuildLogObject(key string) string  { return "log/" + key }

// BaselineObject holds a named baseline of results (simswarm baseline
// save); gc never removes one: a user named it to keep it.
func BaselineObject(name string) string { return KindBaseline + "/" + name }

// PackObject holds a snapshot's files as one stream (snapshot.WritePack).
func PackObject(snapKey string) string { return "pack/" + snapKey }

// RunConfigObject holds a run list's -q runconfig output.
func RunConfigObject(listKey string) string { return "runconfig/" + listKey }

// HasObject reports whether the store holds name.
func (e *Engine) HasObject(ctx context.Context, name string) (bool, error) {
	_, err := e.blob.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", name, err)
	}
	return true, nil
}

// PutObject stores r under name.
func (e *Engine) PutObject(ctx context.Context, name string, r io.Reader) error {
	if _, err := e.blob.Put(ctx, jetstream.ObjectMeta{Name: name}, r); err != nil {
		return fmt.Errorf("store %s: %w", name, e.failedPut(ctx, name, err))
	}
	return nil
}

// PutBytes stores b under name.
func (e *Engine) PutBytes(ctx context.Context, name string, b []byte) error {
	return e.PutObject(ctx, name, bytes.NewReader(b))
}

// OpenObject reads the object name; close it when done. A read after ctx
// ended fails with ctx's error.
func (e *Engine) OpenObject(ctx context.Context, name string) (io.ReadCloser, error) {
	// The client's reader holds a lock while it waits for the next chunk,
	// up to the get's deadline, and Close waits for that lock; a get whose
	// context is cancelled stops its chunks (the subscription ends with
	// it), so a reader waiting then would wait until the deadline, hours
	// (a fetch cancelled because another file of the same tree failed on a
	// full disk hung its runner so). The get runs on a context of its own
	// that only Close ends: its chunks keep coming, each read returns, and
	// this reader stops at the first one after ctx ended. Without a
	// deadline the client gives the whole read 5 s, which a pack or an
	// artifact of a few hundred MB on a busy host outlasts.
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 6*time.Hour)
	r, err := e.blob.Get(gctx, name)
	if err != nil {
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("fetch %s: %w", name, err)
	}
	return &object{r: r, ctx: ctx, cancel: cancel}, nil
}

type object struct {
	r      io.ReadCloser
	ctx    context.Context
	cancel func()
}

func (o *object) Read(p []byte) (int, error) {
	if err := o.ctx.Err(); err != nil {
		return 0, err
	}
	return o.r.Read(p)
}

func (o *object) Close() error {
	err := o.r.Close()
	o.cancel()
	return err
}

// GetObject copies the object name to w.
func (e *Engine) GetObject(ctx context.Context, name string, w io.Writer) error {
	r, err := e.OpenObject(ctx, name)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("fetch %s: %w", name, err)
	}
	return nil
}

// GetBytes returns the object name.
func (e *Engine) GetBytes(ctx context.Context, name string) ([]byte, error) {
	var buf bytes.Buffer
	err := e.GetObject(ctx, name, &buf)
	return buf.Bytes(), err
}

// StoredBytes is the size of everything in the blob store.
func (e *Engine) StoredBytes(ctx context.Context) (uint64, error) {
	info, err := e.blob.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the object store: %w", err)
	}
	return info.Size(), nil
}
