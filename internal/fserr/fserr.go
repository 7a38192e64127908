// Package fserr shapes file-system errors for messages.
package fserr

import (
	"errors"
	"io/fs"
)

// WithoutPath drops the path from an *fs.PathError (os.PathError is the
// same type), leaving what went wrong: callers name the file themselves,
// often relative to a root, and saying it twice makes a long line.
func WithoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
