package webhook

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// An update that leaves the netguard.io annotations alone is admitted with a
// warning when a profile they list is gone; one that writes them is denied,
// in words that say a NetworkProfile is missing and who owns it.
func TestMutatorMissingProfileOnUpdate(t *testing.T) {
	s, c := testServer(t)
	m := &workloadMutator{s: s}
	a := &workloadApplier{s: s}
	ann := map[string]string{rules.AnnotationProfiles: "gone", rules.AnnotationGenerated: `{"digest":"x","policies":["netguard.web.profile.gone"]}`}
	old := webhooktest.Deployment("team", "web", ann)
	old.Spec.Template.Labels[rules.LabelComponent] = "web"
	cur := old.DeepCopy()
	cur.Spec.Template.Spec.Containers[0].Image = "registry.example/app:2" // kubectl set image
	kept := generatedPolicy("team", "netguard.web.profile.gone", "Deployment/web")
	if err := c.Create(context.Background(), kept); err != nil {
		t.Fatal(err)
	}

	resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Update, cur, old, false))
	if !resp.Allowed || len(resp.Patches) != 0 {
		t.Fatalf("unrelated update: want admitted unchanged, got %+v patches %v", resp.AdmissionResponse, resp.Patches)
	}
	want := `netguard: Deployment "web": metadata.annotations[netguard.io/profiles]: Not found: "gone": NetworkProfile "gone" does not exist; NetworkProfiles are cluster-scoped and owned by the platform team: fix the name, or ask the platform team to create it; the update is admitted and the workload's NetworkPolicies are kept as they were until the annotation or the profile is fixed`
	if !slices.Equal(resp.Warnings, []string{want}) {
		t.Errorf("warnings %q\nwant %q", resp.Warnings, want)
	}
	if resp := a.Handle(context.Background(), workloadRequest(t, admissionv1.Update, cur, old, false)); !resp.Allowed {
		t.Fatalf("applier: %+v", resp.AdmissionResponse)
	}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(kept), kept); err != nil {
		t.Errorf("the existing policy must be kept: %v", err)
	}

	// A pod template that lost the component label gets it back.
	bare := cur.DeepCopy()
	delete(bare.Spec.Template.Labels, rules.LabelComponent)
	resp = m.Handle(context.Background(), workloadRequest(t, admissionv1.Update, bare, old, false))
	if got := applyPatch(t, bare, resp); !resp.Allowed || got.Spec.Template.Labels[rules.LabelComponent] != "web" {
		t.Errorf("component label not restored: %+v", resp.AdmissionResponse)
	}

	// Writing the annotations is judged as a create is.
	changed := cur.DeepCopy()
	changed.Annotations[rules.AnnotationDependsOn] = "api:80"
	resp = m.Handle(context.Background(), workloadRequest(t, admissionv1.Update, changed, old, false))
	if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusUnprocessableEntity ||
		!strings.Contains(resp.Result.Message, `Not found: "gone": NetworkProfile "gone" does not exist; NetworkProfiles are cluster-scoped and owned by the platform team`) {
		t.Errorf("annotations written: want 422 naming the missing profile and its owner, got %+v", resp.AdmissionResponse)
	}
}

// Warnings about the annotations come when they are written, never on an
// unrelated update (a finalizer, an image).
func TestMutatorWarnsOnlyWhenAnnotationsAreWritten(t *testing.T) {
	s, _ := testServer(t)
	m := &workloadMutator{s: s}
	dup := map[string]string{rules.AnnotationDependsOn: "web:80 web:80"}
	d := webhooktest.Deployment("team", "web", dup)
	resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, d, nil, false))
	if want := `netguard: netguard.io/depends-on: "web:80" is listed more than once`; !resp.Allowed || !slices.Contains(resp.Warnings, want) {
		t.Fatalf("create: warnings %q, want %q", resp.Warnings, want)
	}
	stored := applyPatch(t, d, resp)
	withFinalizer := stored.DeepCopy()
	withFinalizer.Finalizers = []string{"example.com/hold"}
	resp = m.Handle(context.Background(), workloadRequest(t, admissionv1.Update, withFinalizer, stored, false))
	if !resp.Allowed || len(resp.Warnings) != 0 || len(resp.Patches) != 0 {
		t.Errorf("finalizer patch: want admitted silently, got warnings %q patches %v", resp.Warnings, resp.Patches)
	}
}

// A misspelt netguard.io key is a warning with a suggestion, alone or next
// to real annotations.
func TestMutatorUnknownKeys(t *testing.T) {
	s, _ := testServer(t)
	m := &workloadMutator{s: s}
	want := `netguard: metadata.annotations[netguard.io/depend-on]: netguard does not read this annotation on workloads and ignores it; did you mean netguard.io/depends-on?`
	for _, ann := range []map[string]string{
		{"netguard.io/depend-on": "api:80"},
		{"netguard.io/depend-on": "api:80", rules.AnnotationComponent: "web"},
	} {
		resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, webhooktest.Deployment("team", "web", ann), nil, false))
		if !resp.Allowed || !slices.Contains(resp.Warnings, want) {
			t.Errorf("%v: warnings %q, want %q", ann, resp.Warnings, want)
		}
	}
}

// A dependency on a component nobody declares is a warning at admission, as
// in netguard check and generate; one on a workload without annotations
// names that workload. The validating webhook gives it, having read for it
// while it wrote the policies; the mutating webhook does not repeat it.
func TestApplierDependencyWarnings(t *testing.T) {
	plain := webhooktest.Deployment("team", "api", nil)
	db := &appsv1.StatefulSet{}
	db.Name, db.Namespace = "postgres", "team"
	db.Annotations = map[string]string{rules.AnnotationComponent: "db"}
	s, _ := testServer(t, plain, db)
	m := &workloadMutator{s: s}
	a := &workloadApplier{s: s}
	d := webhooktest.Deployment("team", "web", map[string]string{rules.AnnotationDependsOn: "api:8080 db:5432 ghost:80"})
	if resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, d, nil, false)); !resp.Allowed || slices.ContainsFunc(resp.Warnings, func(w string) bool { return strings.Contains(w, "reaches no pods") }) {
		t.Errorf("mutating webhook: %+v", resp.AdmissionResponse)
	}
	resp := a.Handle(context.Background(), workloadRequest(t, admissionv1.Create, d, nil, false))
	want := []string{
		`netguard: netguard.io/depends-on: Deployment/api in namespace "team" has no netguard annotations, so its pods lack the label netguard.io/component=api and "api:8080" reaches no pods; annotate it with netguard.io/component (which restarts its pods)`,
		`netguard: netguard.io/depends-on: no workload in namespace "team" declares component "ghost", so "ghost:80" reaches no pods`,
	}
	if !resp.Allowed || !slices.Equal(resp.Warnings, want) {
		t.Errorf("warnings:\n got %q\nwant %q", resp.Warnings, want)
	}
}

// The API server confirms a dependency warning with bounded lists: each
// carries confirmListLimit, and a namespace with more workloads of a kind
// than one list holds gives no warning rather than make netguard read all of
// them on every write. The lists read the watch cache as it is: a consistent
// read waits up to 100 ms for an idle kind, and the write waited with it.
func TestApplierDependencyWarningsBoundedConfirmation(t *testing.T) {
	for _, truncated := range []bool{false, true} {
		s, c := testServer(t)
		var mu sync.Mutex
		var limits []int64
		s.apiReader = interceptor.NewClient(c.(client.WithWatch), interceptor.Funcs{List: func(ctx context.Context, cl client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if err := cl.List(ctx, list, opts...); err != nil {
				return err
			}
			raw := (&client.ListOptions{}).ApplyOptions(opts).AsListOptions()
			if raw.ResourceVersion != "1" || raw.ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan {
				t.Errorf("a confirming list of %T with resourceVersion %q, match %q: want the watch cache as it is (\"1\", NotOlderThan), not a consistent read", list, raw.ResourceVersion, raw.ResourceVersionMatch)
			}
			if l, ok := list.(*metav1.PartialObjectMetadataList); ok {
				mu.Lock()
				limits = append(limits, raw.Limit)
				mu.Unlock()
				if truncated && l.GroupVersionKind().Kind == "PodList" {
					l.Continue = "more"
				}
			}
			return nil
		}})
		a := &workloadApplier{s: s}
		d := webhooktest.Deployment("team", "web", map[string]string{rules.AnnotationDependsOn: "ghost:80"})
		resp := a.Handle(context.Background(), workloadRequest(t, admissionv1.Create, d, nil, false))
		warned := slices.ContainsFunc(resp.Warnings, func(w string) bool { return strings.Contains(w, `"ghost"`) })
		if !resp.Allowed || warned == truncated {
			t.Errorf("truncated=%v: allowed %v, warnings %q", truncated, resp.Allowed, resp.Warnings)
		}
		if len(limits) != len(workloadKinds) {
			t.Errorf("truncated=%v: %d metadata lists from the API server, want one per kind (%d)", truncated, len(limits), len(workloadKinds))
		}
		for _, l := range limits {
			if l != confirmListLimit {
				t.Errorf("truncated=%v: a confirming list with limit %d, want %d", truncated, l, confirmListLimit)
			}
		}
	}
}
