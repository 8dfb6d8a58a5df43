package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at build time: -ldflags "-X main.version=v0.1.0 -X main.commit=abc123".
var (
	version = "dev"
	commit  = ""
)

type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

func currentVersion() versionInfo {
	v := versionInfo{Version: version, Commit: commit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if v.Commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					v.Commit = s.Value
				}
			}
		}
	}
	return v
}

func init() {
	registerSubcommand("version", func(streams ioStreams) *cobra.Command {
		var output string
		cmd := &cobra.Command{
			Use:   "version",
			Short: "Print the netguard version",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				v := currentVersion()
				switch output {
				case "json":
					b, _ := json.MarshalIndent(v, "", "  ")
					fmt.Fprintln(streams.Out, string(b))
				case "text", "":
					fmt.Fprintf(streams.Out, "netguard %s", v.Version)
					if v.Commit != "" {
						fmt.Fprintf(streams.Out, " (%s)", v.Commit)
					}
					fmt.Fprintf(streams.Out, " %s %s\n", v.GoVersion, v.Platform)
				default:
					return usageError("--output %q is not supported; use text or json", output)
				}
				return nil
			},
		}
		cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
		return cmd
	})
}
