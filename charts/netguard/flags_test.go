package chart

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// The chart and `netguard serve` are released together: every flag the
// Deployment passes, in every value set, must be one serve accepts, or the
// pods crash-loop on an unknown flag.
func TestDeploymentArgsAreServeFlags(t *testing.T) {
	out, err := exec.Command("go", "run", "../../cmd/netguard", "serve", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("netguard serve --help: %v\n%s", err, out)
	}
	known := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`).FindAllStringSubmatch(string(out), -1) {
		known[m[1]] = true
	}
	if !known["cert-mode"] || !known["config"] {
		t.Fatalf("could not read serve's flags from:\n%s", out)
	}
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			d := get[appsv1.Deployment](t, mustRender(t, vs), "Deployment", "netguard")
			for _, c := range d.Spec.Template.Spec.Containers {
				for _, a := range append(append([]string{}, c.Command...), c.Args...) {
					if !strings.HasPrefix(a, "--") {
						continue
					}
					name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
					if !known[name] {
						t.Errorf("container %s passes %s, which netguard serve does not accept", c.Name, a)
					}
				}
			}
		})
	}
}
