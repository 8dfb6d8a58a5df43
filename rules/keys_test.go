package rules

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestUnknownWorkloadAnnotations(t *testing.T) {
	meta := field.NewPath("metadata")
	got := UnknownWorkloadAnnotations(map[string]string{
		AnnotationDependsOn:            "api:80",
		"netguard.io/depend-on":        "api:80",
		"netguard.io/Profiles":         "x",
		"netguard.io/owner":            "team-a",
		"example.com/netguard.io-like": "x",
	}, meta)
	want := []string{
		`metadata.annotations[netguard.io/Profiles]: netguard does not read this annotation on workloads and ignores it; did you mean netguard.io/profiles?`,
		`metadata.annotations[netguard.io/depend-on]: netguard does not read this annotation on workloads and ignores it; did you mean netguard.io/depends-on?`,
		`metadata.annotations[netguard.io/owner]: netguard does not read this annotation on workloads and ignores it; netguard reads netguard.io/component, netguard.io/depends-on, netguard.io/expose-to, netguard.io/generated, netguard.io/profiles`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := UnknownWorkloadAnnotations(map[string]string{AnnotationComponent: "a", AnnotationGenerated: "{}"}, meta); len(got) != 0 {
		t.Errorf("known keys warned about: %q", got)
	}
}

func TestValidateNamespaceLabels(t *testing.T) {
	meta := field.NewPath("metadata")
	errs, warnings := ValidateNamespaceLabels(map[string]string{
		LabelEnforce:           "Restricted",
		LabelWarn:              "strict",
		LabelAuditVersion:      "v1",
		LabelEnforceVersion:    "latest",
		"netguard.io/ignore":   "",
		"netguard.io/enforce_": "baseline",
		"team":                 "a",
	}, meta, "netguard.io/ignore")
	labels := meta.Child("labels")
	want := field.ErrorList{
		field.Invalid(labels.Key(LabelAuditVersion), "v1", `unknown version "v1": must be "latest" or "v<major>.<minor>" such as "v1.0"`),
		field.Invalid(labels.Key(LabelEnforce), "Restricted", `unknown level "Restricted": must be one of privileged, baseline, restricted, managed; did you mean "restricted"?`),
		field.Invalid(labels.Key(LabelWarn), "strict", `unknown level "strict": must be one of privileged, baseline, restricted, managed`),
	}
	if !reflect.DeepEqual(errs, want) {
		t.Errorf("errors\n got %v\nwant %v", errs, want)
	}
	if w := []string{`metadata.labels[netguard.io/enforce_]: netguard does not read this label on namespaces and ignores it; did you mean netguard.io/enforce?`}; !reflect.DeepEqual(warnings, w) {
		t.Errorf("warnings %q, want %q", warnings, w)
	}
}

func TestUndeclaredDependencies(t *testing.T) {
	deps, _, errs := ParseDependsOn("api:80 api:81 db:5432 ghost:1", field.NewPath("x"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got := UndeclaredDependencies("shop", deps,
		func(c string) bool { return c == "db" },
		func(name string) string {
			if name == "api" {
				return "Deployment/api"
			}
			return ""
		})
	want := []string{
		`netguard.io/depends-on: Deployment/api in namespace "shop" has no netguard annotations, so its pods lack the label netguard.io/component=api and "api:80" reaches no pods; annotate it with netguard.io/component (which restarts its pods)`,
		`netguard.io/depends-on: no workload in namespace "shop" declares component "ghost", so "ghost:1" reaches no pods`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
