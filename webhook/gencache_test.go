package webhook

import (
	"context"
	"reflect"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/netguard/netguard/rules"
)

func TestGenerationCache(t *testing.T) {
	ctx := context.Background()
	var objs []client.Object
	for _, p := range benchProfiles() {
		objs = append(objs, p.DeepCopy())
	}
	c := fake.NewClientBuilder().WithScheme(NewScheme()).WithObjects(objs...).Build()
	cached := &injector{cache: c, live: c, generated: newGenerationCache(16)}
	plain := &injector{cache: c, live: c}
	w := rules.Workload{Kind: "Deployment", Namespace: "team", Name: "web", UID: "u1", Annotations: map[string]string{
		rules.AnnotationDependsOn: "api:8080 db:5432",
		rules.AnnotationProfiles:  "node-local-dns,payments-api",
	}}
	hits := func() float64 { return testutil.ToFloat64(generationCacheLookups.WithLabelValues("hit")) }

	// generate calls cached and uncached generation, and says whether the
	// cached one was a hit; both must agree.
	generate := func(w rules.Workload) bool {
		t.Helper()
		before := hits()
		got, gotErrs, err := cached.generate(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		want, wantErrs, err := plain.generate(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Generated, want.Generated) || len(gotErrs) != len(wantErrs) {
			t.Fatalf("cached generation differs from a fresh one:\n got %+v %v\nwant %+v %v", got, gotErrs, want, wantErrs)
		}
		return hits() > before
	}

	if generate(w) {
		t.Fatal("first generation was a hit")
	}
	if !generate(w) {
		t.Fatal("same inputs: want a hit")
	}
	// Any input the generator reads makes a new entry.
	for name, change := range map[string]func(*rules.Workload){
		"uid":        func(w *rules.Workload) { w.UID = "" },
		"name":       func(w *rules.Workload) { w.Name = "web2" },
		"namespace":  func(w *rules.Workload) { w.Namespace = "other" },
		"kind":       func(w *rules.Workload) { w.Kind = "StatefulSet" },
		"depends-on": func(w *rules.Workload) { w.Annotations[rules.AnnotationDependsOn] = "api:8081" },
		"component":  func(w *rules.Workload) { w.Annotations[rules.AnnotationComponent] = "web" },
	} {
		w2 := w
		w2.Annotations = map[string]string{}
		for k, v := range w.Annotations {
			w2.Annotations[k] = v
		}
		change(&w2)
		if generate(w2) {
			t.Errorf("%s changed: want a miss", name)
		}
	}
	// Unrelated annotations do not matter.
	w3 := w
	w3.Annotations = map[string]string{"other": "x", rules.AnnotationGenerated: "old"}
	for k, v := range w.Annotations {
		w3.Annotations[k] = v
	}
	if !generate(w) || !generate(w3) {
		t.Error("unrelated annotations: want a hit")
	}
	// A changed profile invalidates the entry.
	p := benchProfiles()["payments-api"].DeepCopy()
	if err := c.Get(ctx, client.ObjectKeyFromObject(p), p); err != nil {
		t.Fatal(err)
	}
	p.Spec.Egress[0].Ports = p.Spec.Egress[0].Ports[:0]
	if err := c.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	if generate(w) {
		t.Error("profile changed: want a miss")
	}
	if !generate(w) {
		t.Error("after regenerating: want a hit")
	}
	// Failed generations are not kept: a missing profile is looked for again.
	bad := w
	bad.Annotations = map[string]string{rules.AnnotationProfiles: "nope"}
	for range 2 {
		if generate(bad) {
			t.Error("missing profile: want no hit")
		}
	}
}

func TestGenerationKeyIsUnambiguous(t *testing.T) {
	a := rules.Workload{Kind: "Deployment", Namespace: "ab", Name: "c", Annotations: map[string]string{rules.AnnotationDependsOn: ""}}
	b := rules.Workload{Kind: "Deployment", Namespace: "a", Name: "bc", Annotations: map[string]string{rules.AnnotationDependsOn: ""}}
	c := rules.Workload{Kind: "Deployment", Namespace: "ab", Name: "c", Annotations: map[string]string{}}
	if generationKey(a) == generationKey(b) || generationKey(a) == generationKey(c) {
		t.Fatal("different inputs share a key")
	}
}

// TestGenerationCacheVerdicts: a cached generation carries how the
// namespace's levels judged it; a later call at another level judges it
// anew, and every verdict is the one an uncached generation gets.
func TestGenerationCacheVerdicts(t *testing.T) {
	ctx := context.Background()
	c := fake.NewClientBuilder().WithScheme(NewScheme()).Build()
	labels := &fakeNamespaces{labels: map[string]map[string]string{"shop": nil}}
	cached := &Server{cfg: testConfig(), namespaces: labels, injector: &injector{cache: c, live: c, generated: newGenerationCache(16)}}
	plain := &Server{cfg: testConfig(), namespaces: labels, injector: &injector{cache: c, live: c}}
	w := rules.Workload{Kind: "Deployment", Namespace: "shop", Name: "web", UID: "u1", NamespaceLabels: map[string]string{},
		Annotations: map[string]string{rules.AnnotationDependsOn: "api:1-65535 cache:6379"}}

	judge := func(s *Server) generatedVerdict {
		t.Helper()
		gen, ferrs, err := s.injector.generate(ctx, w)
		if err != nil || len(ferrs) > 0 {
			t.Fatal(err, ferrs)
		}
		v, err := s.judgeGenerated(ctx, w, gen)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	check := func(step string, wantDenied, wantWarned bool) {
		t.Helper()
		for i := 0; i < 2; i++ { // the second call finds the memo
			got, want := judge(cached), judge(plain)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s, call %d: cached verdict differs:\n got %+v\nwant %+v", step, i, got, want)
			}
			if (len(got.denied) > 0) != wantDenied || (len(got.warnings) > 0) != wantWarned {
				t.Fatalf("%s, call %d: denied %v, warnings %v", step, i, got.denied, got.warnings)
			}
		}
	}
	// Enforce baseline, warn restricted: "api:1-65535" is too wide for
	// restricted only.
	check("default levels", false, true)
	gen, _, _ := cached.injector.generate(ctx, w)
	if gen.judged == nil || len(gen.judged.judged) != 2 {
		t.Fatalf("want the baseline and restricted verdicts in the memo, got %+v", gen.judged)
	}
	labels.mu.Lock()
	labels.labels["shop"] = map[string]string{rules.LabelEnforce: "restricted"}
	labels.mu.Unlock()
	check("enforce restricted", true, false)
	labels.mu.Lock()
	labels.labels["shop"] = map[string]string{rules.LabelEnforce: "privileged", rules.LabelWarn: "privileged", rules.LabelAudit: "privileged"}
	labels.mu.Unlock()
	check("privileged", false, false)
}
