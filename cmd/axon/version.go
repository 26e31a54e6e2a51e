package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/axon-hs/axon/matrix/roomversion"
)

// version is set at build time with -ldflags "-X main.version=…"; without
// it the module version or VCS revision from the build info is used.
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	switch {
	case info.Main.Version != "" && info.Main.Version != "(devel)":
		return info.Main.Version
	case rev != "":
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "-dirty"
		}
		return "devel-" + rev
	}
	return "devel"
}

func cmdVersion(w io.Writer) int {
	fmt.Fprintf(w, "axon %s\nroom versions: %s (default %s)\n",
		versionString(), strings.Join(roomversion.IDs(), ", "), roomversion.Default)
	return exitOK
}
