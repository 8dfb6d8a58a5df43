package webhook

import (
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
)

func TestTrimForCache(t *testing.T) {
	managed := []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	ann := func() map[string]string {
		return map[string]string{
			"kubectl.kubernetes.io/last-applied-configuration": `{"spec":"..."}`,
			rules.AnnotationDependsOn:                          "api:8080",
			rules.AnnotationGenerated:                          "record",
		}
	}
	labels := map[string]string{rules.LabelManagedBy: rules.ManagedByValue, "team": "a"}

	w := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: labels, Annotations: ann(), ManagedFields: managed}}
	if _, err := trimForCache(w); err != nil {
		t.Fatal(err)
	}
	if w.ManagedFields != nil {
		t.Error("managedFields kept")
	}
	if want := map[string]string{rules.AnnotationDependsOn: "api:8080", rules.AnnotationGenerated: "record"}; !reflect.DeepEqual(w.Annotations, want) {
		t.Errorf("annotations %v, want only netguard's %v", w.Annotations, want)
	}
	if !reflect.DeepEqual(w.Labels, labels) {
		t.Errorf("labels changed: %v", w.Labels)
	}

	only := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{"a": "b"}}}
	_, _ = trimForCache(only)
	if only.Annotations != nil {
		t.Errorf("no netguard annotations: want none kept, got %v", only.Annotations)
	}

	// Objects cached whole keep their annotations.
	p := &netguardv1alpha1.NetworkProfile{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: ann(), ManagedFields: managed}}
	_, _ = trimForCache(p)
	if p.ManagedFields != nil || !reflect.DeepEqual(p.Annotations, ann()) {
		t.Errorf("profile: managedFields %v, annotations %v", p.ManagedFields, p.Annotations)
	}
	// Anything else passes through.
	if out, err := trimForCache("x"); err != nil || out != "x" {
		t.Errorf("non-object: %v, %v", out, err)
	}
}
