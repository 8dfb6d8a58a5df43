package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// netguard is also a kubectl plugin: installed as kubectl-netguard (krew,
// .krew.yaml, or `make plugin`), it runs as `kubectl netguard ...`, and its
// help says so. docs/install.md, "kubectl plugin".

// pluginDisplayName is "kubectl netguard" when the binary is named
// kubectl-netguard (with any extension, as on Windows), else "".
func pluginDisplayName(arg0 string) string {
	base := strings.TrimSuffix(filepath.Base(arg0), filepath.Ext(filepath.Base(arg0)))
	if name, ok := strings.CutPrefix(base, "kubectl-"); ok && name != "" {
		return "kubectl " + strings.ReplaceAll(name, "_", "-")
	}
	return ""
}

// asPlugin makes help and usage name the command as kubectl shows it.
func asPlugin(root *cobra.Command, arg0 string) {
	name := pluginDisplayName(arg0)
	if name == "" {
		return
	}
	if root.Annotations == nil {
		root.Annotations = map[string]string{}
	}
	root.Annotations[cobra.CommandDisplayNameAnnotation] = name
}

// programName is the name the process was started as.
func programName() string {
	if len(os.Args) == 0 {
		return "netguard"
	}
	return os.Args[0]
}
