package main

import (
	"strings"
	"testing"
)

// TestOneWordingPerMistake: check and generate describe the same mistake in
// the same words (and in the webhook's: rules.MissingProfile and friends).
func TestOneWordingPerMistake(t *testing.T) {
	workload := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  annotations:
    netguard.io/depends-on: "api:8080 ghost:1"
    netguard.io/profiles: scrape
    netguard.io/depend-on: x
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: a, image: b}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: a, image: b}]}
`
	same := []string{
		`metadata.annotations[netguard.io/profiles]: Not found: "scrape": NetworkProfile "scrape" does not exist; NetworkProfiles are cluster-scoped and owned by the platform team: fix the name, or ask the platform team to create it`,
		`<stdin>#1: Deployment "web": warning: metadata.annotations[netguard.io/depend-on]: netguard does not read this annotation on workloads and ignores it; did you mean netguard.io/depends-on?`,
		`<stdin>#1: Deployment "web": warning: netguard.io/depends-on: Deployment/api in namespace "shop" has no netguard annotations, so its pods lack the label netguard.io/component=api and "api:8080" reaches no pods`,
		`<stdin>#1: Deployment "web": warning: netguard.io/depends-on: no workload in namespace "shop" declares component "ghost", so "ghost:1" reaches no pods`,
	}
	_, checkOut, checkErr := checkRun(t, workload, "-f", "-")
	genOut, genErr, _ := genRun(workload, "generate", "-f", "-")
	for _, s := range same {
		if !strings.Contains(checkOut+checkErr, s) {
			t.Errorf("check lacks %q:\n%s%s", s, checkOut, checkErr)
		}
		if !strings.Contains(genOut+genErr, s) {
			t.Errorf("generate lacks %q:\n%s%s", s, genOut, genErr)
		}
	}

	// A document that cannot be decoded is FILE#N everywhere.
	bad := "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\nspec: {bogus: 1}\n"
	want := `netguard: <stdin>#1: v1 Namespace: strict decoding error: unknown field "spec.bogus"`
	_, checkOut, checkErr = checkRun(t, bad, "-f", "-")
	_, genErr, _ = genRun(bad, "generate", "-f", "-")
	_, reachErr, _ := genRun(bad, "reach", "-f", "-", "--matrix")
	for cmd, out := range map[string]string{"check": checkOut + checkErr, "generate": genErr, "reach": reachErr} {
		if !strings.Contains(out, want) {
			t.Errorf("%s: lacks %q:\n%s", cmd, want, out)
		}
	}
}

// TestReachHelpGeneratedFlag: the --generated line is a sentence, not a
// type name taken from back quotes.
func TestReachHelpGeneratedFlag(t *testing.T) {
	out, _, code := genRun("", "reach", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := "--generated   add the policies netguard generate would produce for annotated workloads in the input (--generated=false to leave them out) (default true)"
	if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
		t.Errorf("help lacks %q:\n%s", want, out)
	}
}
