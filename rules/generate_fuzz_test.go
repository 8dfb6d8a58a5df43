package rules

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// FuzzGenerate: the generator never panics and, for any annotations it
// accepts, produces valid, deterministic policies that open exactly what the
// annotations say (checked with the evaluator against the model in
// generate_model_test.go) and pass the baseline checks, except what a
// profile explicitly grants.
func FuzzGenerate(f *testing.F) {
	f.Add("web", true, "api:8080 api:grpc cache:6379/udp", "")
	f.Add("", false, "web:10000-30000 db:postgres/SCTP", "p1")
	f.Add("web", true, "", "p1 p2 empty")
	f.Add("web", true, "web:1-65535", "missing")
	f.Add("Bad", true, "x:1", "")
	f.Add("a", true, "b:80a", "")
	f.Fuzz(func(t *testing.T, component string, setComponent bool, dependsOn, profiles string) {
		ann := map[string]string{AnnotationDependsOn: dependsOn}
		if setComponent {
			ann[AnnotationComponent] = component
		}
		if profiles != "" {
			ann[AnnotationProfiles] = profiles
		}
		w := Workload{Kind: "Deployment", Namespace: modelNamespace, Name: "fuzzed", UID: "uid-1", Annotations: ann}
		g, errs := Generate(w, testProfiles())
		if len(errs) > 0 {
			if len(g.Policies) > 0 {
				t.Fatalf("policies returned with errors %v", errs)
			}
			return
		}
		again, _ := Generate(w, testProfiles())
		if again.Digest != g.Digest || !reflect.DeepEqual(again, g) {
			t.Fatal("not deterministic")
		}
		for i, p := range g.Policies {
			if i > 0 && g.Policies[i-1].Name >= p.Name {
				t.Fatalf("not sorted or duplicate: %q, %q", g.Policies[i-1].Name, p.Name)
			}
			if msgs := validation.IsDNS1123Subdomain(p.Name); len(msgs) > 0 {
				t.Fatalf("name %q: %v", p.Name, msgs)
			}
			for k, v := range p.Labels {
				if len(validation.IsQualifiedName(k)) > 0 || len(validation.IsValidLabelValue(v)) > 0 {
					t.Fatalf("label %q=%q", k, v)
				}
			}
			if p.Namespace != modelNamespace || len(p.OwnerReferences) != 1 || p.OwnerReferences[0].UID != "uid-1" {
				t.Fatalf("%s: namespace or owner %+v", p.Name, p.ObjectMeta)
			}
			if strings.Contains(p.Name, ".profile.") {
				continue // a profile may grant what baseline forbids: that is its job
			}
			if vs := Evaluate(LevelBaseline, LatestVersion(), p); len(vs) > 0 {
				t.Fatalf("%s violates baseline: %v", p.Name, vs)
			}
		}
		ann2, _, _ := ParseAnnotations(w.Name, w.Annotations, nil)
		deps := map[string][]Dependency{g.Component: ann2.DependsOn}
		// The model check is quadratic in components and linear in probes;
		// keep each fuzz iteration fast.
		comps := map[string]bool{g.Component: true}
		for _, d := range ann2.DependsOn {
			comps[d.Component] = true
		}
		if len(comps) > 6 || len(ann2.DependsOn) > 12 {
			return
		}
		policies := append(NamespaceBaseline(modelNamespace, BaselineOptions{}), g.Policies...)
		checkAgainstModel(t, policies, deps, explainedByProfile)
	})
}
