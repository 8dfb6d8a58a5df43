package rules

// The kinds netguard injects into, and where each keeps the metadata of the
// pods it makes. This is the one place that knows a pod template's location
// per kind: the webhook patches and checks the label there, the controller
// and the CLI read it there.

import (
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// WorkloadKind is a kind whose netguard.io annotations netguard reads.
type WorkloadKind struct {
	Group, Version, Kind string
	// Resource is the plural resource name: "deployments".
	Resource string
	// PodMetadata is the field path of the metadata its pods get: the pod
	// template's ("spec", "template", "metadata"), or a Pod's own
	// ("metadata").
	PodMetadata []string
	// LabelOnly marks a kind netguard does not inject into but whose pod
	// template's netguard.io/component label it checks (ReplicaSet).
	LabelOnly bool
}

// APIVersion is "apps/v1", "batch/v1" or "v1".
func (k WorkloadKind) APIVersion() string {
	return schema.GroupVersion{Group: k.Group, Version: k.Version}.String()
}

// GroupVersionKind of the kind.
func (k WorkloadKind) GroupVersionKind() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind}
}

// PodLabelsPath is the field path of the pods' labels:
// spec.template.metadata.labels, or metadata.labels for a Pod.
func (k WorkloadKind) PodLabelsPath() *field.Path {
	return field.NewPath(k.PodMetadata[0], k.PodMetadata[1:]...).Child("labels")
}

// PodLabelsPointer is PodLabelsPath as a JSON pointer (RFC 6901):
// "/spec/template/metadata/labels".
func (k WorkloadKind) PodLabelsPointer() string {
	return "/" + strings.Join(k.PodMetadata, "/") + "/labels"
}

// IsPod reports whether the kind is a Pod, whose own labels netguard sets.
func (k WorkloadKind) IsPod() bool { return k.Group == "" && k.Kind == "Pod" }

var (
	templateMetadata    = []string{"spec", "template", "metadata"}
	jobTemplateMetadata = []string{"spec", "jobTemplate", "spec", "template", "metadata"}
	workloadKinds       = []WorkloadKind{
		{Group: "apps", Version: "v1", Kind: "Deployment", Resource: "deployments", PodMetadata: templateMetadata},
		{Group: "apps", Version: "v1", Kind: "StatefulSet", Resource: "statefulsets", PodMetadata: templateMetadata},
		{Group: "apps", Version: "v1", Kind: "DaemonSet", Resource: "daemonsets", PodMetadata: templateMetadata},
		{Group: "batch", Version: "v1", Kind: "Job", Resource: "jobs", PodMetadata: templateMetadata},
		{Group: "batch", Version: "v1", Kind: "CronJob", Resource: "cronjobs", PodMetadata: jobTemplateMetadata},
		{Group: "", Version: "v1", Kind: "Pod", Resource: "pods", PodMetadata: []string{"metadata"}},
	}
)

// replicaSetKind: a Deployment makes ReplicaSets, and netguard skips their
// pods, so a ReplicaSet written by anyone else has its template's
// component label checked (docs/security.md).
var replicaSetKind = WorkloadKind{Group: "apps", Version: "v1", Kind: "ReplicaSet", Resource: "replicasets", PodMetadata: templateMetadata, LabelOnly: true}

// LookupLabelledKind is LookupWorkloadGroupKind that also knows the kinds
// whose pod template's component label netguard only checks (LabelOnly).
func LookupLabelledKind(group, kind string) (WorkloadKind, bool) {
	if group == replicaSetKind.Group && kind == replicaSetKind.Kind {
		return replicaSetKind, true
	}
	return LookupWorkloadGroupKind(group, kind)
}

// WorkloadKinds returns the kinds netguard injects into, in a fixed order.
func WorkloadKinds() []WorkloadKind {
	out := make([]WorkloadKind, len(workloadKinds))
	copy(out, workloadKinds)
	return out
}

// LookupWorkloadKind returns the kind named kind ("Deployment"), if netguard
// injects into it. Kind names are unique among them.
func LookupWorkloadKind(kind string) (WorkloadKind, bool) {
	for _, k := range workloadKinds {
		if k.Kind == kind {
			return k, true
		}
	}
	return WorkloadKind{}, false
}

// LookupWorkloadGroupKind is LookupWorkloadKind for a group and kind, as an
// admission request names them.
func LookupWorkloadGroupKind(group, kind string) (WorkloadKind, bool) {
	k, ok := LookupWorkloadKind(kind)
	return k, ok && k.Group == group
}

// PodTemplate returns the metadata and spec of the pods a typed Deployment,
// StatefulSet, DaemonSet, Job, CronJob or Pod makes (a Pod's are its own),
// or false for any other object.
func PodTemplate(obj runtime.Object) (*metav1.ObjectMeta, *corev1.PodSpec, bool) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		if o != nil {
			return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, true
		}
	case *appsv1.StatefulSet:
		if o != nil {
			return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, true
		}
	case *appsv1.DaemonSet:
		if o != nil {
			return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, true
		}
	case *batchv1.Job:
		if o != nil {
			return &o.Spec.Template.ObjectMeta, &o.Spec.Template.Spec, true
		}
	case *batchv1.CronJob:
		if o != nil {
			return &o.Spec.JobTemplate.Spec.Template.ObjectMeta, &o.Spec.JobTemplate.Spec.Template.Spec, true
		}
	case *corev1.Pod:
		if o != nil {
			return &o.ObjectMeta, &o.Spec, true
		}
	}
	return nil, nil, false
}

// templateOwners are, per kind, the controllers whose objects of that kind
// come from a pod template (or job template) netguard already handled: a
// Pod of a ReplicaSet (a Deployment's), StatefulSet, DaemonSet or Job, and a
// Job of a CronJob.
var templateOwners = map[string][]schema.GroupKind{
	"Pod":        {{Group: "apps", Kind: "ReplicaSet"}, {Group: "apps", Kind: "StatefulSet"}, {Group: "apps", Kind: "DaemonSet"}, {Group: "batch", Kind: "Job"}},
	"Job":        {{Group: "batch", Kind: "CronJob"}},
	"ReplicaSet": {{Group: "apps", Kind: "Deployment"}},
}

// TemplateOwner returns the controller ownerReference of an object of kind
// when that controller made it from a template netguard handles (see
// templateOwners): netguard skips such an object, its template was handled.
// Anything else (no controller, or an operator's custom resource) is false:
// the object is handled on its own. An ownerReference can be written by
// whoever creates the object, so this says what the object claims, not who
// made it; admission checks the creator as well (docs/injection.md).
func TemplateOwner(kind string, refs []metav1.OwnerReference) (metav1.OwnerReference, bool) {
	for _, ref := range refs {
		if ref.Controller == nil || !*ref.Controller {
			continue
		}
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return metav1.OwnerReference{}, false
		}
		for _, gk := range templateOwners[kind] {
			if gk.Group == gv.Group && gk.Kind == ref.Kind {
				return ref, true
			}
		}
		return metav1.OwnerReference{}, false
	}
	return metav1.OwnerReference{}, false
}
