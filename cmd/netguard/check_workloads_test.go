package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestReportWorkloadFindings(t *testing.T) {
	input := strings.Replace(genShop, `"api:8080"`, `"api:8080 api:0 ghost:1"`, 1) + "---\n" + genProfiles + "---\n" + genProfiles
	ms, errs := loadManifests([]string{"-"}, strings.NewReader(input))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	var buf bytes.Buffer
	n := reportWorkloadFindings(&buf, ms)
	want := `netguard: <stdin>#7: NetworkProfile "egress-payments" is already defined in <stdin>#6
netguard: <stdin>#2: Deployment "web": metadata.annotations[netguard.io/depends-on]: Invalid value: "api:0": port must be 1-65535, a range LOW-HIGH, or a port name (up to 15 lowercase letters, digits and '-', starting with a letter)
`
	if n != 2 || buf.String() != want {
		t.Errorf("%d errors:\n%s\nwant:\n%s", n, buf.String(), want)
	}

	ms, _ = loadManifests([]string{"-"}, strings.NewReader(genShop+"---\n"+genProfiles))
	buf.Reset()
	if n := reportWorkloadFindings(&buf, ms); n != 0 || buf.Len() != 0 {
		t.Errorf("clean input: %d errors:\n%s", n, buf.String())
	}

	// Warnings are reported and do not count.
	ms, _ = loadManifests([]string{"-"}, strings.NewReader(strings.Replace(genShop, `"api:8080"`, `"api:8080 api:8080 ghost:1"`, 1)+"---\n"+genProfiles))
	buf.Reset()
	n = reportWorkloadFindings(&buf, ms)
	want = `netguard: <stdin>#2: Deployment "web": warning: netguard.io/depends-on: "api:8080" is listed more than once
netguard: <stdin>#2: Deployment "web": warning: netguard.io/depends-on: no workload in namespace "shop" declares component "ghost", so "ghost:1" reaches no pods
`
	if n != 0 || buf.String() != want {
		t.Errorf("%d errors:\n%s", n, buf.String())
	}
}
