package dashboard

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ReadTokenFile reads a token kept in a file (--token-file), so that it
// shows neither in ps nor in the shell's history. Like the engine's
// credentials, a file others may read is refused (Docker secrets under
// /run/secrets/ excepted: their mode is Docker's to set).
func ReadTokenFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	if fi.IsDir() {
		return "", fmt.Errorf("--token-file %s is a directory", path)
	}
	if fi.Mode().Perm()&0o077 != 0 && !strings.HasPrefix(path, "/run/secrets/") {
		return "", fmt.Errorf("--token-file %s is readable by others (mode %04o): chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("--token-file %s is empty", path)
	}
	if strings.ContainsAny(tok, "\n\r") {
		return "", errors.New("--token-file " + path + " holds more than one line")
	}
	return tok, nil
}
