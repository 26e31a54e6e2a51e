package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runAxon(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, env, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runAxon(t, nil, "version")
	if code != exitOK || !strings.HasPrefix(out, "axon ") || !strings.Contains(out, "(default 12)") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"frobnicate"},
		{"user"},
		{"user", "delete", "x"},
		{"serve", "--no-such-flag"},
		{"serve", "--registration", "sometimes"},
		{"loadtest"},
	} {
		if code, _, errs := runAxon(t, nil, args...); code != exitUsage || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
	if code, _, _ := runAxon(t, nil); code != exitUsage {
		t.Errorf("no command: exit %d", code)
	}
}

func TestMigrateSQLite(t *testing.T) {
	dir := t.TempDir()
	env := []string{"AXON_DATA_DIR=" + filepath.Join(dir, "data")}
	code, out, errs := runAxon(t, env, "migrate")
	latest := fmt.Sprint(latestVersion(t))
	if code != exitOK || !strings.Contains(out, "schema version "+latest+" (was 0") {
		t.Fatalf("first migrate: %d %q %q", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "axon.db")); err != nil {
		t.Errorf("database not in the data dir: %v", err)
	}
	code, out, _ = runAxon(t, env, "migrate")
	if code != exitOK || !strings.Contains(out, "(was "+latest+";") {
		t.Errorf("second migrate: %d %q", code, out)
	}
}

func TestMigratePostgres(t *testing.T) {
	url := os.Getenv("AXON_TEST_POSTGRES")
	if url == "" {
		t.Skip("AXON_TEST_POSTGRES is not set (make test sets it)")
	}
	code, out, errs := runAxon(t, nil, "migrate", "--database", url, "--data-dir", t.TempDir())
	if code != exitOK || !strings.Contains(out, "schema version") {
		t.Fatalf("migrate: %d %q %q", code, out, errs)
	}
}

func TestMigrateReportsEveryConfigError(t *testing.T) {
	code, _, errs := runAxon(t, []string{"AXON_ROLES=client,nope"}, "migrate", "--server-name", "bad name", "--registration", "sometimes")
	if code != exitUsage {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"--server-name", "AXON_ROLES", "--registration"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr does not name %s:\n%s", want, errs)
		}
	}
}

func TestMigrateHelp(t *testing.T) {
	code, out, _ := runAxon(t, nil, "migrate", "--help")
	if code != exitOK || !strings.Contains(out, "AXON_DATABASE") {
		t.Errorf("help: %d %q", code, out)
	}
}

// latestVersion is the highest migration version the binary knows.
func latestVersion(t *testing.T) int {
	t.Helper()
	v := 0
	for _, fsys := range allMigrations() {
		entries, err := fs.ReadDir(fsys, ".")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			var n int
			if _, err := fmt.Sscanf(e.Name(), "%04d_", &n); err == nil && n > v {
				v = n
			}
		}
	}
	return v
}
