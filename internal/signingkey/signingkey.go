// Package signingkey loads the server's ed25519 signing keys from the key
// file in the data directory, creating the file with a new key on first
// start. The file uses Synapse's signing.key format (one
// "ed25519 <version> <base64 seed>" line per key, see matrix/keys), so an
// operator can bring the key of an existing deployment.
//
// It owns the file only: it never rotates keys on its own (Rotate is the
// operator's command, axon key rotate), and it never logs key material.
// The first key in use is the one the server signs with; keys marked with
// an expiry (see matrix/keys.ParseKeyFile) are old keys, published so that
// what they signed can still be checked.
package signingkey

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/axon-hs/axon/matrix/keys"
)

// LoadOrCreate reads the key file at path. When the file does not exist it
// generates a key (version "a_" + four random letters and digits, as
// Synapse names its keys), writes it with mode 0600 atomically (a temporary
// file renamed into place, so a crash never leaves half a key) and returns
// it with created=true. An existing file that cannot be parsed, or that
// others can read, is an error: the server must not start with a key it
// cannot trust.
func LoadOrCreate(path string, random io.Reader) (ks []*keys.SigningKey, created bool, err error) {
	if random == nil {
		random = rand.Reader
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := checkMode(path); err != nil {
			return nil, false, err
		}
		ks, err := keys.ParseKeyFile(data)
		if err != nil {
			return nil, false, fmt.Errorf("signing key file %s: %w", path, err)
		}
		return ks, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("read signing key file: %w", err)
	}
	version, err := newVersion(random)
	if err != nil {
		return nil, false, err
	}
	k, err := keys.Generate(version, random)
	if err != nil {
		return nil, false, err
	}
	if err := writeAtomic(path, keys.FormatKeyFile(k)); err != nil {
		return nil, false, err
	}
	return []*keys.SigningKey{k}, true, nil
}

// Rotate retires the keys in use in the key file at path (they expire at
// now and are kept as old keys) and adds a new key that signs from now
// on. The file is rewritten atomically. Servers read the file when they
// start: each signs with the new key after its restart, and until then
// with the old one, which remote servers accept either way (the old key
// stays published).
func Rotate(path string, now time.Time, random io.Reader) (*keys.SigningKey, error) {
	if random == nil {
		random = rand.Reader
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key file: %w", err)
	}
	if err := checkMode(path); err != nil {
		return nil, err
	}
	ks, err := keys.ParseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("signing key file %s: %w", path, err)
	}
	var k *keys.SigningKey
	for {
		version, err := newVersion(random)
		if err != nil {
			return nil, err
		}
		if slices.ContainsFunc(ks, func(o *keys.SigningKey) bool { return o.ID.Version() == version }) {
			continue // the same four characters again: draw another
		}
		if k, err = keys.Generate(version, random); err != nil {
			return nil, err
		}
		break
	}
	expired := max(now.UnixMilli(), 1)
	for _, o := range ks {
		if o.ExpiredTS == 0 {
			o.ExpiredTS = expired
		}
	}
	if err := writeAtomic(path, keys.FormatKeyFile(append([]*keys.SigningKey{k}, ks...)...)); err != nil {
		return nil, err
	}
	return k, nil
}

func newVersion(random io.Reader) (string, error) {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 4)
	if _, err := io.ReadFull(random, b); err != nil {
		return "", fmt.Errorf("generate key version: %w", err)
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return "a_" + string(b), nil
}

// checkMode refuses a key file that users other than the owner can read or
// write.
func checkMode(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stat signing key file: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("signing key file %s has mode %04o: others can read it; chmod 600 it", path, perm)
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create key directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".signing.key.*")
	if err != nil {
		return fmt.Errorf("create signing key file: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this does nothing
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("write signing key file: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open key directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync key directory: %w", err)
	}
	return nil
}
