package signingkey

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/axon-hs/axon/matrix/keys"
)

func TestCreateThenLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "signing.key")
	ks, created, err := LoadOrCreate(path, nil)
	if err != nil || !created || len(ks) != 1 {
		t.Fatalf("create: %v created=%v keys=%d", err, created, len(ks))
	}
	if v := ks[0].ID.Version(); !strings.HasPrefix(v, "a_") || len(v) != 6 {
		t.Errorf("key version %q", v)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", st.Mode(), err)
	}
	again, created, err := LoadOrCreate(path, nil)
	if err != nil || created || len(again) != 1 || !bytes.Equal(again[0].Priv, ks[0].Priv) || again[0].ID != ks[0].ID {
		t.Fatalf("load: %v created=%v", err, created)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("leftover files: %v", entries)
	}
}

// An operator's existing Synapse key is used as it is.
func TestLoadsSynapseKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signing.key")
	seed := bytes.Repeat([]byte{5}, 32)
	k, _ := keys.FromSeed("ed25519:a_AbCd", seed)
	if err := os.WriteFile(path, []byte("ed25519 a_AbCd "+keys.Base64(seed)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ks, created, err := LoadOrCreate(path, nil)
	if err != nil || created || ks[0].ID != "ed25519:a_AbCd" || ks[0].PublicBase64() != k.PublicBase64() {
		t.Fatalf("%v created=%v %+v", err, created, ks)
	}
}

func TestRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.key")
	os.WriteFile(garbage, []byte("not a key\n"), 0o600)
	if _, _, err := LoadOrCreate(garbage, nil); err == nil {
		t.Errorf("garbage key file accepted")
	}
	open := filepath.Join(dir, "open.key")
	k, _ := keys.Generate("x", nil)
	os.WriteFile(open, keys.FormatKeyFile(k), 0o644)
	os.Chmod(open, 0o644)
	if _, _, err := LoadOrCreate(open, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key file: %v", err)
	}
	if _, _, err := LoadOrCreate(filepath.Join(garbage, "sub", "k"), nil); err == nil {
		t.Errorf("key under a file accepted")
	}
}

func TestRotate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signing.key")
	first, _, err := LoadOrCreate(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(1_700_000_000_000)
	k1, err := Rotate(path, at, nil)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := Rotate(path, at.Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	ks, created, err := LoadOrCreate(path, nil)
	if err != nil || created {
		t.Fatalf("load: %v created=%v", err, created)
	}
	if len(ks) != 3 || ks[0].ID != k2.ID || ks[0].ExpiredTS != 0 {
		t.Fatalf("keys after two rotations: %+v", ks)
	}
	expiry := map[keys.KeyID]int64{}
	for _, k := range ks[1:] {
		expiry[k.ID] = k.ExpiredTS
	}
	// Each key expired when the next one replaced it; an old key keeps its
	// first expiry.
	if expiry[first[0].ID] != at.UnixMilli() || expiry[k1.ID] != at.Add(time.Hour).UnixMilli() {
		t.Errorf("expiries = %v", expiry)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode after rotation: %v", err)
	}
	if _, err := Rotate(filepath.Join(t.TempDir(), "missing"), at, nil); err == nil {
		t.Error("rotating a missing file succeeded")
	}
}
