package webhook

import (
	"context"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

func TestMutatorJobsCronJobsAndPods(t *testing.T) {
	s, _ := testServer(t)
	m := &workloadMutator{s: s}
	ann := map[string]string{rules.AnnotationDependsOn: "db:5432"}
	j := &batchv1.Job{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"}, ObjectMeta: metav1.ObjectMeta{Name: "migrate", Namespace: "team", Annotations: ann}}
	if got := applyPatch(t, j, m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, j, nil, false))); got.Spec.Template.Labels[rules.LabelComponent] != "migrate" {
		t.Errorf("Job template labels %v", got.Spec.Template.Labels)
	}
	c := &batchv1.CronJob{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"}, ObjectMeta: metav1.ObjectMeta{Name: "backup", Namespace: "team", Annotations: ann}}
	c.Spec.JobTemplate.Spec.Template.Labels = map[string]string{"app": "backup"}
	got := applyPatch(t, c, m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, c, nil, false)))
	if l := got.Spec.JobTemplate.Spec.Template.Labels; l[rules.LabelComponent] != "backup" || l["app"] != "backup" {
		t.Errorf("CronJob job template labels %v", l)
	}
	if got.Annotations[rules.AnnotationGenerated] == "" {
		t.Errorf("CronJob record missing: %v", got.Annotations)
	}
	p := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "team", Annotations: ann}}
	gotPod := applyPatch(t, p, m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, p, nil, false)))
	if gotPod.Labels[rules.LabelComponent] != "db" || gotPod.Annotations[rules.AnnotationGenerated] == "" {
		t.Errorf("Pod labels %v annotations %v", gotPod.Labels, gotPod.Annotations)
	}
}

// A pod a ReplicaSet made is skipped even when its template carried
// netguard annotations; a label on it is checked unless the controller
// wrote it.
func TestMutatorPodsMadeFromTemplates(t *testing.T) {
	web := webhooktest.Deployment("team", "web", map[string]string{rules.AnnotationDependsOn: "db:5432"})
	s, _ := testServer(t, web)
	m := &workloadMutator{s: s}
	yes := true
	pod := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{
		Name: "web-abc", Namespace: "team",
		Labels:          map[string]string{rules.LabelComponent: "web"},
		Annotations:     map[string]string{rules.AnnotationDependsOn: "db:5432"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-abc", UID: "rs", Controller: &yes}},
	}}
	req := workloadRequest(t, admissionv1.Create, pod, nil, false)
	req.UserInfo.Username = "system:serviceaccount:kube-system:replicaset-controller"
	if resp := m.Handle(context.Background(), req); !resp.Allowed || len(resp.Patches) != 0 || len(resp.Warnings) != 0 {
		t.Errorf("the replicaset controller's pod: %+v", resp.AdmissionResponse)
	}
	req.UserInfo.Username = "tenant"
	resp := m.Handle(context.Background(), req)
	if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, `Pod "web-abc" is invalid: metadata.labels[netguard.io/component]: Forbidden: component "web" is declared by Deployment/web in namespace "team"`) {
		t.Errorf("a tenant's pod with a forged ownerReference: %+v", resp.AdmissionResponse)
	}
	// An exempt user is not judged against the level, and this refusal is
	// the level's (configuration.md, exemptions).
	s.cfg.ExemptUsernames = []string{"node-harness"}
	req.UserInfo.Username = "node-harness"
	if resp := m.Handle(context.Background(), req); !resp.Allowed || len(resp.Warnings) != 0 {
		t.Errorf("an exempt user's labelled pod: %+v", resp.AdmissionResponse)
	}
	s.cfg.ExemptUsernames = nil
	// At a namespace enforcing privileged the same is a warning.
	lax := pod.DeepCopy()
	lax.Namespace = "lax"
	s2, _ := testServer(t, webhooktest.Deployment("lax", "web", map[string]string{rules.AnnotationDependsOn: "db:5432"}))
	resp = (&workloadMutator{s: s2}).Handle(context.Background(), workloadRequest(t, admissionv1.Create, lax, nil, false))
	if !resp.Allowed || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "only netguard sets this label") {
		t.Errorf("privileged: want allowed with one warning, got %+v", resp.AdmissionResponse)
	}
	// An update that leaves the label as it was is not judged again.
	plain := webhooktest.Deployment("team", "plain", nil)
	plain.Spec.Template.Labels[rules.LabelComponent] = "web"
	if resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Update, plain, plain, false)); !resp.Allowed {
		t.Errorf("unchanged label on update: %+v", resp.AdmissionResponse)
	}
	if resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, plain, nil, false)); resp.Allowed || !strings.Contains(resp.Result.Message, "spec.template.metadata.labels[netguard.io/component]") {
		t.Errorf("unannotated Deployment with web's label: %+v", resp.AdmissionResponse)
	}
	// Before the caches are synced: admitted with a warning (fail open).
	s.synced.Store(false)
	if resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, plain, nil, false)); !resp.Allowed || len(resp.Warnings) != 1 {
		t.Errorf("not synced: %+v", resp.AdmissionResponse)
	}
}

func TestTrimPodForCache(t *testing.T) {
	yes := true
	meta := metav1.ObjectMeta{
		Name: "p", Namespace: "ns", UID: "u", ResourceVersion: "7",
		Labels:          map[string]string{"app": "x", rules.LabelComponent: "x"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "example.com/v1", Kind: "Op", Name: "o", UID: "o", Controller: &yes}, {APIVersion: "v1", Kind: "ConfigMap", Name: "c", UID: "c"}},
		Annotations:     map[string]string{"other": "big"},
	}
	pod := func(m metav1.ObjectMeta) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: m}
	}
	out, _ := trimForCache(pod(meta))
	p := out.(*metav1.PartialObjectMetadata)
	if p.Name != "p" || p.UID != "u" || p.ResourceVersion != "7" || p.Labels != nil || p.Annotations != nil || p.OwnerReferences != nil {
		t.Errorf("unannotated pod kept %+v", p.ObjectMeta)
	}
	meta.Annotations[rules.AnnotationDependsOn] = "db:1"
	out, _ = trimForCache(pod(meta))
	p = out.(*metav1.PartialObjectMetadata)
	if len(p.Labels) != 1 || p.Labels[rules.LabelComponent] != "x" || len(p.Annotations) != 1 || len(p.OwnerReferences) != 1 || p.OwnerReferences[0].Kind != "Op" {
		t.Errorf("annotated pod kept %+v", p.ObjectMeta)
	}
	// Other kinds keep their labels.
	d := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}, ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "x"}}}
	if out, _ := trimForCache(d); out.(*metav1.PartialObjectMetadata).Labels["app"] != "x" {
		t.Error("a Deployment lost its labels")
	}
}
