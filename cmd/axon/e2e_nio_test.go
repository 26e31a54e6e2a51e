package main

import (
	"os"
	"os/exec"
	"testing"
)

// TestThirdPartyClientNio runs tests/e2e/nio_scenario.py, which drives the
// server through matrix-nio (a third-party client library, Debian's
// python3-matrix-nio), against a server started here. make test installs
// the package; outside CI a machine without it skips the test.
func TestThirdPartyClientNio(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end client scenario: not in -short")
	}
	python := "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import nio").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3-matrix-nio is not installed (make test installs it): %v", err)
		}
		t.Skipf("python3-matrix-nio is not installed: %v", err)
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		ts := startServer(t, b)
		cmd := exec.Command(python, "../../tests/e2e/nio_scenario.py", ts.base, ts.name)
		out, err := cmd.CombinedOutput()
		t.Logf("%s", out)
		if err != nil {
			t.Fatalf("nio scenario failed: %v", err)
		}
	})
}
