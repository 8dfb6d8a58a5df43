package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestPluginDisplayName(t *testing.T) {
	for arg0, want := range map[string]string{
		"/usr/local/bin/kubectl-netguard":     "kubectl netguard",
		"kubectl-netguard.exe":                "kubectl netguard",
		"/home/me/.krew/bin/kubectl-netguard": "kubectl netguard",
		"netguard":                            "",
		"/usr/local/bin/netguard":             "",
		"kubectl-":                            "",
	} {
		if got := pluginDisplayName(arg0); got != want {
			t.Errorf("%q: %q, want %q", arg0, got, want)
		}
	}
	// Run as the plugin, help names the command as kubectl does.
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	os.Args = []string{"/home/me/.krew/bin/kubectl-netguard"}
	var out bytes.Buffer
	if code := run([]string{"--help"}, ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &out}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(out.String(), "kubectl netguard [command]") {
		t.Errorf("plugin help:\n%s", out.String())
	}
}

// TestKrewManifest: .krew.yaml is a krew Plugin named netguard whose every
// platform installs the binary as kubectl-netguard.
func TestKrewManifest(t *testing.T) {
	b, err := os.ReadFile("../../.krew.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		APIVersion, Kind string
		Metadata         struct{ Name string }
		Spec             struct {
			Version, Homepage, ShortDescription, Description string
			Platforms                                        []struct {
				Selector struct{ MatchLabels map[string]string }
				URI, Bin string
			}
		}
	}
	// The {{ }} of krew-release-bot are inside quoted strings: the file is
	// YAML as it is.
	if err := yaml.UnmarshalStrict(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || m.Metadata.Name != "netguard" ||
		m.Spec.ShortDescription == "" || len(m.Spec.ShortDescription) > 50 || m.Spec.Homepage == "" {
		t.Errorf("manifest %+v", m)
	}
	if len(m.Spec.Platforms) < 4 {
		t.Errorf("%d platforms", len(m.Spec.Platforms))
	}
	for _, p := range m.Spec.Platforms {
		os, arch := p.Selector.MatchLabels["os"], p.Selector.MatchLabels["arch"]
		want := "kubectl-netguard"
		if os == "windows" {
			want += ".exe"
		}
		if p.Bin != want || !strings.Contains(p.URI, os+"_"+arch) {
			t.Errorf("platform %s/%s: bin %q uri %q", os, arch, p.Bin, p.URI)
		}
	}
}
