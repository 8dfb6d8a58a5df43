package rules

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestWorkloadKindPaths(t *testing.T) {
	for _, c := range []struct {
		kind, apiVersion, path, pointer string
	}{
		{"Deployment", "apps/v1", "spec.template.metadata.labels", "/spec/template/metadata/labels"},
		{"StatefulSet", "apps/v1", "spec.template.metadata.labels", "/spec/template/metadata/labels"},
		{"DaemonSet", "apps/v1", "spec.template.metadata.labels", "/spec/template/metadata/labels"},
		{"Job", "batch/v1", "spec.template.metadata.labels", "/spec/template/metadata/labels"},
		{"CronJob", "batch/v1", "spec.jobTemplate.spec.template.metadata.labels", "/spec/jobTemplate/spec/template/metadata/labels"},
		{"Pod", "v1", "metadata.labels", "/metadata/labels"},
	} {
		k, ok := LookupWorkloadKind(c.kind)
		if !ok {
			t.Fatalf("%s: not a workload kind", c.kind)
		}
		if k.APIVersion() != c.apiVersion || k.PodLabelsPath().String() != c.path || k.PodLabelsPointer() != c.pointer {
			t.Errorf("%s: got %s %s %s, want %s %s %s", c.kind, k.APIVersion(), k.PodLabelsPath(), k.PodLabelsPointer(), c.apiVersion, c.path, c.pointer)
		}
	}
	if _, ok := LookupWorkloadKind("ReplicaSet"); ok {
		t.Error("ReplicaSet: netguard does not inject into ReplicaSets")
	}
	if k, ok := LookupLabelledKind("apps", "ReplicaSet"); !ok || !k.LabelOnly {
		t.Errorf("ReplicaSet: got %+v %v, want a label-only kind", k, ok)
	}
	if _, ok := LookupWorkloadGroupKind("apps", "Job"); ok {
		t.Error("apps Job: Jobs are batch")
	}
}

// The pod template helper and the kinds agree: the labels PodTemplate
// returns are at the kind's path.
func TestPodTemplate(t *testing.T) {
	labels := map[string]string{"a": "b"}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}}
	for _, obj := range []any{
		&appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: tmpl}},
		&appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Template: tmpl}},
		&appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Template: tmpl}},
		&batchv1.Job{Spec: batchv1.JobSpec{Template: tmpl}},
		&batchv1.CronJob{Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: tmpl}}}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: labels}},
	} {
		m, spec, ok := PodTemplate(obj.(runtime.Object))
		if !ok || spec == nil || m.Labels["a"] != "b" {
			t.Errorf("%T: got %v %v", obj, m, ok)
		}
	}
	if _, _, ok := PodTemplate(&appsv1.ReplicaSet{}); ok {
		t.Error("ReplicaSet: not a workload kind")
	}
}

func TestTemplateOwner(t *testing.T) {
	yes, no := true, false
	ref := func(apiVersion, kind string, controller *bool) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: "o", UID: "u", Controller: controller}}
	}
	for _, c := range []struct {
		kind string
		refs []metav1.OwnerReference
		want bool
	}{
		{"Pod", ref("apps/v1", "ReplicaSet", &yes), true},
		{"Pod", ref("apps/v1", "StatefulSet", &yes), true},
		{"Pod", ref("apps/v1", "DaemonSet", &yes), true},
		{"Pod", ref("batch/v1", "Job", &yes), true},
		{"Pod", ref("apps/v1", "ReplicaSet", &no), false},      // not the controller
		{"Pod", ref("apps/v1", "ReplicaSet", nil), false},      // not the controller
		{"Pod", ref("example.com/v1", "Cluster", &yes), false}, // an operator's custom resource
		{"Pod", ref("example.com/v1", "ReplicaSet", &yes), false},
		{"Pod", nil, false},
		{"Job", ref("batch/v1", "CronJob", &yes), true},
		{"Job", ref("apps/v1", "ReplicaSet", &yes), false},
		{"Deployment", ref("apps/v1", "ReplicaSet", &yes), false},
		{"ReplicaSet", ref("apps/v1", "Deployment", &yes), true},
	} {
		if _, got := TemplateOwner(c.kind, c.refs); got != c.want {
			t.Errorf("%s owned by %+v: got %v, want %v", c.kind, c.refs, got, c.want)
		}
	}
}

// Generated policies are owned by their workload with its kind's apiVersion.
func TestGeneratedOwnerReferenceAPIVersion(t *testing.T) {
	for kind, apiVersion := range map[string]string{"Deployment": "apps/v1", "Job": "batch/v1", "CronJob": "batch/v1", "Pod": "v1"} {
		w := Workload{Kind: kind, Namespace: "ns", Name: "web", UID: "uid", Annotations: map[string]string{AnnotationDependsOn: "api:80"}}
		gen, errs := Generate(w, nil)
		if len(errs) > 0 || len(gen.Policies) == 0 {
			t.Fatalf("%s: %v", kind, errs)
		}
		for _, p := range gen.Policies {
			refs := p.OwnerReferences
			if len(refs) != 1 || refs[0].APIVersion != apiVersion || refs[0].Kind != kind || refs[0].Name != "web" {
				t.Errorf("%s: policy %s owned by %+v, want %s %s/web", kind, p.Name, refs, apiVersion, kind)
			}
			if p.Annotations[AnnotationWorkload] != kind+"/web" {
				t.Errorf("%s: policy %s names %q", kind, p.Name, p.Annotations[AnnotationWorkload])
			}
		}
	}
}

func TestForeignComponentLabel(t *testing.T) {
	pod, _ := LookupWorkloadKind("Pod")
	cron, _ := LookupWorkloadKind("CronJob")
	owner := Workload{Kind: "Deployment", Name: "payments"}
	got := ForeignComponentLabel(pod, "shop", "payments", owner).Error()
	want := `metadata.labels[netguard.io/component]: Forbidden: component "payments" is declared by Deployment/payments in namespace "shop", and only netguard sets this label, on the pods of a component's owner; remove the label, or declare a component of this Pod's own with the netguard.io/component annotation`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if f := ForeignComponentLabel(cron, "shop", "payments", owner).Field; f != "spec.jobTemplate.spec.template.metadata.labels[netguard.io/component]" {
		t.Errorf("CronJob: field %s", f)
	}
}
