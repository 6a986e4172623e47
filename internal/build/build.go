// Package build holds what the release build stamps into the binaries with
// -ldflags -X (see the Makefile and .goreleaser.yaml).
package build

import "runtime/debug"

var (
	Version = "dev"
	Commit  = "none"
	Date    = "unknown"
)

func init() {
	// A plain `go install module@version` stamps no ldflags, but the module
	// version is still known from the build info.
	if Version != "dev" {
		return
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		Version = info.Main.Version
	}
}
