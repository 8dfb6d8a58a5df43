package main

import (
	"strings"
	"testing"
)

func TestWorkloadResults(t *testing.T) {
	input := strings.Replace(genShop, `"api:8080"`, `"api:8080 api:0 ghost:1"`, 1) + "---\n" + genProfiles + "---\n" + genProfiles
	ms, errs := loadManifests([]string{"-"}, strings.NewReader(input))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	results, warnings, dups := workloadResults(ms)
	if len(dups) != 1 || dups[0].Error() != `<stdin>#7: NetworkProfile "egress-payments" is already defined in <stdin>#6` {
		t.Errorf("duplicate profiles: %v", dups)
	}
	var bad []string
	for _, r := range results {
		if r.Allowed {
			continue
		}
		for _, v := range r.Violations {
			bad = append(bad, r.Source+" "+r.Kind+" "+r.Name+" "+v.String())
		}
	}
	want := []string{`<stdin>#2 Deployment web [invalidAnnotations] metadata.annotations[netguard.io/depends-on]: Invalid value: "api:0": port must be 1-65535, a range LOW-HIGH, or a port name (up to 15 lowercase letters, digits and '-', starting with a letter); netguard generates nothing for this workload until it is fixed`}
	if strings.Join(bad, "\n") != strings.Join(want, "\n") {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(bad, "\n"), strings.Join(want, "\n"))
	}
	if len(warnings) != 0 {
		t.Errorf("warnings: %v", warnings)
	}

	ms, _ = loadManifests([]string{"-"}, strings.NewReader(genShop+"---\n"+genProfiles))
	results, warnings, dups = workloadResults(ms)
	for _, r := range results {
		if !r.Allowed {
			t.Errorf("clean input: %s %s not allowed: %v", r.Kind, r.Name, r.Violations)
		}
	}
	if len(results) == 0 || len(warnings) != 0 || len(dups) != 0 {
		t.Errorf("clean input: %d results, warnings %v, duplicates %v", len(results), warnings, dups)
	}

	// Warnings come back apart and leave the workload allowed.
	ms, _ = loadManifests([]string{"-"}, strings.NewReader(strings.Replace(genShop, `"api:8080"`, `"api:8080 api:8080 ghost:1"`, 1)+"---\n"+genProfiles))
	results, warnings, _ = workloadResults(ms)
	var got []string
	for _, w := range warnings {
		got = append(got, w.String())
	}
	wantWarnings := []string{
		`<stdin>#2: Deployment "web": warning: netguard.io/depends-on: "api:8080" is listed more than once`,
		`<stdin>#2: Deployment "web": warning: netguard.io/depends-on: no workload in namespace "shop" declares component "ghost", so "ghost:1" reaches no pods`,
	}
	if strings.Join(got, "\n") != strings.Join(wantWarnings, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantWarnings, "\n"))
	}
	for _, r := range results {
		if !r.Allowed {
			t.Errorf("a warning made %s %s not allowed", r.Kind, r.Name)
		}
	}
}
