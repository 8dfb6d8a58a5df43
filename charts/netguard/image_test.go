package chart

import (
	"os"
	"regexp"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// TestImageTagFollowsAppVersion: `make image` tags the image with the chart's
// appVersion (IMAGE_TAG in the Makefile), and the chart's default image is
// that tag, so that an install of this chart pulls the image built with it.
func TestImageTagFollowsAppVersion(t *testing.T) {
	appVersion := loadChart(t).Metadata.AppVersion
	if appVersion == "" {
		t.Fatal("Chart.yaml has no appVersion")
	}
	r := mustRender(t, valueSetNamed(t, "defaults"))
	d := get[appsv1.Deployment](t, r, "Deployment", "netguard")
	if got, want := d.Spec.Template.Spec.Containers[0].Image, "ghcr.io/netguard/netguard:"+appVersion; got != want {
		t.Errorf("default image %q, want %q", got, want)
	}
	tagged := mustRender(t, valueSet{name: "tagged", values: "image:\n  repository: registry.example/netguard\n  tag: 1.2.3\n"})
	d = get[appsv1.Deployment](t, tagged, "Deployment", "netguard")
	if got := d.Spec.Template.Spec.Containers[0].Image; got != "registry.example/netguard:1.2.3" {
		t.Errorf("image %q: image.tag must win over appVersion", got)
	}

	// The Makefile derives IMAGE_TAG from this file's appVersion line.
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^IMAGE_TAG\s+\?=.*appVersion.*charts/netguard/Chart\.yaml`).Match(mk) {
		t.Error("Makefile: IMAGE_TAG must default to the appVersion of charts/netguard/Chart.yaml")
	}
	chartYAML, err := os.ReadFile("Chart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^appVersion: "?([^"\n]+)"?$`).FindSubmatch(chartYAML); m == nil || string(m[1]) != appVersion {
		t.Errorf("Chart.yaml appVersion line %q: the Makefile reads it as appVersion: \"X\"", m)
	}
}
