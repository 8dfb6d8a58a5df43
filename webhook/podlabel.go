package webhook

import (
	"context"
	"slices"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/netguard/netguard/rules"
)

// Hand-written component labels. Every path granted to a component selects
// pods by the label netguard.io/component, and netguard puts it on the pods
// of the component's owner only. A label written by hand on a Pod, or on the
// pod template of a workload without netguard annotations, would give those
// pods the owner's paths: admission refuses it when another claimant owns
// the component (docs/security.md, hand-labelled pods).
//
// What netguard skips: the pods (and Jobs, ReplicaSets) that a Kubernetes
// workload controller makes from a template netguard already saw. An
// ownerReference alone proves nothing, since whoever creates an object may
// write one; such an object is skipped only when the request also comes
// from the controller-manager (TemplateControllerUsernames), which a tenant
// cannot act as. The webhook's match conditions say the same in CEL, so
// that those objects never reach netguard.

// TemplateControllerUsernames are the users kube-controller-manager creates
// pods, Jobs and ReplicaSets as: its own identity, or with
// --use-service-account-credentials the service account of each controller.
var TemplateControllerUsernames = []string{
	"system:kube-controller-manager",
	"system:serviceaccount:kube-system:cronjob-controller",
	"system:serviceaccount:kube-system:daemon-set-controller",
	"system:serviceaccount:kube-system:deployment-controller",
	"system:serviceaccount:kube-system:job-controller",
	"system:serviceaccount:kube-system:replicaset-controller",
	"system:serviceaccount:kube-system:statefulset-controller",
}

// madeFromTemplate reports whether the request writes an object that a
// workload controller made from a template netguard handles.
func madeFromTemplate(req admission.Request, o decodedWorkload) bool {
	_, owned := rules.TemplateOwner(o.kind.Kind, o.GetOwnerReferences())
	return owned && slices.Contains(TemplateControllerUsernames, req.UserInfo.Username)
}

// componentLabelWritten returns the component label of the pods the object
// makes when the request sets or changes it.
func componentLabelWritten(req admission.Request, o decodedWorkload) (string, bool) {
	labels, _ := o.doc.podLabels(o.kind)
	c, ok := labels[rules.LabelComponent]
	if !ok {
		return "", false
	}
	if req.Operation == admissionv1.Update {
		if old, err := decodeWorkload(req, true); err == nil {
			oldLabels, _ := old.doc.podLabels(old.kind)
			if was, had := oldLabels[rules.LabelComponent]; had && was == c {
				return "", false
			}
		}
	}
	return c, true
}

// checkLabel refuses, or at a namespace enforcing privileged warns about, a
// component label that the request writes on the pods of an object netguard
// does not label itself, when another claimant owns the component. It fails
// open when netguard cannot decide, as workload admission does.
func (m *workloadMutator) checkLabel(ctx context.Context, req admission.Request, o decodedWorkload) (admission.Response, decision) {
	c, written := componentLabelWritten(req, o)
	if !written || madeFromTemplate(req, o) || m.s.isSelf(req.UserInfo.Username) {
		return admission.Allowed(""), decision{"allow", "exempt", "none"}
	}
	// An exempt user's writes are never judged against a level (as in Pod
	// Security Admission), and refusing this label is a level's decision.
	if m.s.cfg.userExempt(req.UserInfo.Username, req.UserInfo.Groups) {
		return admission.Allowed(""), decision{"allow", "exempt", "none"}
	}
	if !m.s.synced.Load() {
		return admission.Allowed("").WithWarnings("netguard is starting and its caches are not synced: the " + rules.LabelComponent + " label of this " + o.kind.Kind + " was not checked"), decision{"allow", "inject", "none"}
	}
	w := toRulesWorkload(o.kind.Kind, o)
	owner, err := m.s.injector.componentOwner(ctx, w, c, true)
	if err != nil {
		logf.FromContext(ctx).Info("cannot read the namespace's workloads to check a component label; admitting", "error", err.Error())
		return admission.Allowed(""), decision{"allow", "inject", "none"}
	}
	if owner == nil || ownedBy(o, *owner) {
		return admission.Allowed(""), decision{"allow", "inject", "none"}
	}
	ferr := rules.ForeignComponentLabel(o.kind, req.Namespace, c, *owner)
	level := m.s.enforceLevel(ctx, req.Namespace)
	if level != rules.LevelPrivileged {
		logf.FromContext(ctx).Info("denied a component label netguard did not set", "field", ferr.Field, "owner", owner.Ref())
		return invalid(req, objectName(req, o), field.ErrorList{ferr}), decision{"deny", "inject", string(level)}
	}
	return admission.Allowed("").WithWarnings("netguard: " + ferr.Error()), decision{"allow", "inject", string(level)}
}

// objectName is the object's name, or its generateName while the API server
// has not generated one yet.
func objectName(req admission.Request, o decodedWorkload) string {
	if n := o.GetName(); n != "" {
		return n
	}
	if req.Name != "" {
		return req.Name
	}
	return o.GetGenerateName()
}

// ownedBy reports whether o's controller ownerReference names owner, by
// kind, name and UID: a Job made with kubectl create job --from=cronjob/X
// carries X's template and label, and is X's. A UID can be read by whoever
// may read the owner, so this lets someone who may create objects in the
// namespace give one the owner's label on purpose (docs/security.md).
func ownedBy(o decodedWorkload, owner rules.Workload) bool {
	ref := metav1.GetControllerOfNoCopy(o)
	return ref != nil && owner.UID != "" && ref.UID == owner.UID && ref.Kind == owner.Kind && ref.Name == owner.Name && ref.APIVersion == owner.APIVersion()
}
