// Package gitrepo asks git about a user's repository and checks commits
// out beside it (git worktree), never touching the user's own checkout.
package gitrepo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Repo is a git work tree.
type Repo struct {
	Root string // the work tree's top directory
}

// git runs git in dir and returns its standard output, trimmed; an error
// carries git's own first line.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	// The user's own settings must not turn a worktree command into
	// something else (hooks of a post-checkout, a pager, prompts).
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_PAGER=cat", "GIT_OPTIONAL_LOCKS=0")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String())
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", args[0], strings.TrimPrefix(msg, "fatal: "))
	}
	return strings.TrimSpace(out.String()), nil
}

// Open finds the git work tree holding dir.
func Open(ctx context.Context, dir string) (*Repo, error) {
	top, err := git(ctx, dir, "rev-parse", "--show-toplevel")
	if err != nil {
		return nil, fmt.Errorf("%s is not in a git work tree: %w", dir, err)
	}
	return &Repo{Root: top}, nil
}

// Resolve names the commit a revision (a hash, a branch, HEAD~3) means.
func (r *Repo) Resolve(ctx context.Context, rev string) (string, error) {
	h, err := git(ctx, r.Root, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil || h == "" {
		return "", fmt.Errorf("%q names no commit of %s", rev, r.Root)
	}
	return h, nil
}

// IsAncestor reports whether a is an ancestor of b (or b itself).
func (r *Repo) IsAncestor(ctx context.Context, a, b string) (bool, error) {
	cmd := exec.CommandContext(ctx, "git", "merge-base", "--is-ancestor", a, b)
	cmd.Dir = r.Root
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ee) && ee.ExitCode() == 1:
		return false, nil
	}
	return false, fmt.Errorf("git merge-base %s %s: %w", a, b, err)
}

// Path lists the commits from good (excluded) to bad (included) along
// the first-parent line, oldest first: the commits a bisect chooses from.
func (r *Repo) Path(ctx context.Context, good, bad string) ([]string, error) {
	out, err := git(ctx, r.Root, "rev-list", "--first-parent", "--ancestry-path", "--reverse", good+".."+bad)
	if err != nil {
		return nil, err
	}
	if out == "" {
		return nil, nil
	}
	return strings.Split(out, "\n"), nil
}

// Tree is the hash of a commit's tree: two commits with the same tree
// (a revert, a merge that changed nothing) hold the same files.
func (r *Repo) Tree(ctx context.Context, commit string) (string, error) {
	return git(ctx, r.Root, "rev-parse", "--verify", commit+"^{tree}")
}

// Subject is a commit's one-line message.
func (r *Repo) Subject(ctx context.Context, commit string) string {
	s, _ := git(ctx, r.Root, "log", "-1", "--format=%s", commit)
	return s
}

// Dirty lists the tracked files with changes not committed (untracked
// files, such as results a campaign wrote, do not count).
func (r *Repo) Dirty(ctx context.Context) ([]string, error) {
	// Refresh the index first: a file touched but not changed is clean.
	_, _ = git(ctx, r.Root, "update-index", "-q", "--refresh")
	out, err := git(ctx, r.Root, "diff", "--name-only", "HEAD", "--")
	if err != nil || out == "" {
		return nil, err
	}
	return strings.Split(out, "\n"), nil
}

// Head describes the checked-out commit: its hash, with "+dirty" when
// tracked files were changed since. "" outside a git work tree.
func Head(ctx context.Context, dir string) string {
	r, err := Open(ctx, dir)
	if err != nil {
		return ""
	}
	h, err := git(ctx, r.Root, "rev-parse", "HEAD")
	if err != nil {
		return ""
	}
	if d, err := r.Dirty(ctx); err == nil && len(d) > 0 {
		h += "+dirty"
	}
	return h
}

// AddWorktree checks commit out into dir as a detached worktree; the
// user's checkout, index and branches stay as they are. A worktree left
// at dir by an earlier, interrupted use is replaced.
func (r *Repo) AddWorktree(ctx context.Context, dir, commit string) error {
	if _, err := os.Stat(dir); err == nil {
		_ = r.RemoveWorktree(ctx, dir)
	}
	_, _ = git(ctx, r.Root, "worktree", "prune")
	if _, err := git(ctx, r.Root, "-c", "core.hooksPath=/dev/null", "worktree", "add", "--detach", "--force", dir, commit); err != nil {
		return fmt.Errorf("check out %s: %w", short(commit), err)
	}
	return nil
}

// RemoveWorktree removes a worktree AddWorktree made, and its files.
func (r *Repo) RemoveWorktree(ctx context.Context, dir string) error {
	_, err := git(ctx, r.Root, "worktree", "remove", "--force", "--force", dir)
	if rmErr := os.RemoveAll(dir); rmErr != nil && err == nil {
		err = rmErr
	}
	_, _ = git(ctx, r.Root, "worktree", "prune")
	return err
}

func short(h string) string {
	if len(h) > 10 {
		return h[:10]
	}
	return h
}
