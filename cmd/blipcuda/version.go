package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at link time for releases:
//
//	go build -ldflags "-X main.version=v1.2.3" ./cmd/blipcuda
//
// Otherwise the module version and VCS revision recorded by the Go
// toolchain are shown.
var version = ""

var versionCommand = &command{
	name:     "version",
	synopsis: "[flags]",
	summary:  "print the version",
	help:     `Prints the blipcuda version, the VCS revision it was built from, and the Go version and platform.`,
	run:      runVersion,
}

// versionString is the version alone, for the User-Agent.
func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func runVersion(ctx context.Context, a *app, args []string) error {
	fs := newFlagSet("version")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("version takes no arguments")
	}
	line := "blipcuda " + versionString()
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = "+dirty"
				}
			}
		}
		if rev != "" {
			line += " (" + rev[:min(len(rev), 12)] + modified + ")"
		}
	}
	line += fmt.Sprintf(" %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return a.writeOutput(ctx, "", func(w io.Writer) error {
		_, err := fmt.Fprintln(w, line)
		return err
	})
}
