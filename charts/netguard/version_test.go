package chart

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// semver is MAJOR.MINOR.PATCH with an optional pre-release, without a "v".
var semver = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)

// The binary, the image and the chart share one version (CONTRIBUTING.md,
// "Versions and releases"): the chart's version and appVersion are equal,
// semantic versions, and CHANGELOG.md has a section for it.
func TestOneVersionForChartAndApp(t *testing.T) {
	ch := loadChart(t)
	v, app := ch.Metadata.Version, ch.Metadata.AppVersion
	if !semver.MatchString(v) {
		t.Errorf("Chart.yaml version %q is not a semantic version X.Y.Z", v)
	}
	if app != v {
		t.Errorf("Chart.yaml appVersion %q, version %q: set both to the release's version", app, v)
	}
	changelog, err := os.ReadFile("../../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(changelog), "\n## ["+v+"]") {
		t.Errorf("CHANGELOG.md has no section \"## [%s]\": move the Unreleased entries under it", v)
	}
}
