// Package buildinfo says which build of Brain a binary is, for `brainctl version`,
// `gateway -version` and `worker -version`.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version is the build's version, set by `make build`:
//
//	go build -ldflags "-X github.com/backendim/brain/proto/buildinfo.version=$(git describe --always --dirty)"
var version string

// String describes the build of program: "brainctl 5a09f6d-dirty (go1.26.8 linux/amd64)", with
// the commit and its time when Go recorded them (builds with VCS stamping) and "dev" when nothing
// names the version.
func String(program string) string {
	v, details := version, []string{}
	if info, ok := debug.ReadBuildInfo(); ok {
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		if rev := settings["vcs.revision"]; rev != "" {
			if settings["vcs.modified"] == "true" {
				rev += "-dirty"
			}
			details = append(details, "commit "+rev, settings["vcs.time"])
		}
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
	}
	if v == "" {
		v = "dev"
	}
	details = append(details, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	return fmt.Sprintf("%s %s (%s)", program, v, strings.Join(nonEmpty(details), ", "))
}

// Requested reports whether args ask a server binary for its version: -version or --version.
func Requested(args []string) bool {
	return len(args) > 0 && (args[0] == "-version" || args[0] == "--version")
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
