package webhook

import (
	"context"
	"fmt"
	"slices"

	admissionv1 "k8s.io/api/admission/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/netguard/netguard/rules"
)

// What netguard does when the cluster's own machinery moves its objects
// along: the garbage collector orphaning a workload's policies, a workload
// being deleted, a namespace leaving or rejoining default-deny. None of it
// may wedge the operation (docs/install.md, "Lifecycle").

// systemMayWrite reports whether kube-controller-manager's garbage collector
// and namespace controller (Config.SystemDeleters) may make this write to a
// managed policy: delete it (a deleted workload's or namespace's policies),
// or release its ownerReferences (an orphaning deletion). Never create or
// change one.
func systemMayWrite(op admissionv1.Operation, oldNP, newNP *networkingv1.NetworkPolicy) bool {
	switch op {
	case admissionv1.Delete:
		return true
	case admissionv1.Update:
		return ownerReferencesReleased(oldNP, newNP)
	}
	return false
}

// baselineFix ends the denial of a change to the namespace baseline: what
// does remove it (removeBaseline).
const (
	baselineFix  = "it is the namespace's default-deny: " + baselineKept
	dnsFix       = "it lets the namespace's pods reach the cluster DNS: " + baselineKept
	baselineKept = "netguard keeps it while the namespace's enforce level is above privileged, " +
		"and removes it once the namespace is labelled " + rules.LabelEnforce + "=privileged (or " + LabelIgnore + ") by whoever may label namespaces"
)

// ownerReferencesReleased reports whether newNP is oldNP with some of its
// ownerReferences removed and nothing else changed: what the garbage
// collector writes when it orphans a dependent (`kubectl delete
// --cascade=orphan`, or a deleted workload's `orphan` finalizer). The
// owner's deletion waits for that write, so it must be allowed; it changes
// no traffic.
func ownerReferencesReleased(oldNP, newNP *networkingv1.NetworkPolicy) bool {
	if oldNP == nil || newNP == nil || len(newNP.OwnerReferences) >= len(oldNP.OwnerReferences) {
		return false
	}
	for _, ref := range newNP.OwnerReferences {
		if !slices.ContainsFunc(oldNP.OwnerReferences, func(o metav1.OwnerReference) bool { return apiequality.Semantic.DeepEqual(o, ref) }) {
			return false
		}
	}
	// Everything else must be as it was. The API server sets what differs
	// between any two versions of an object on its own.
	strip := func(np *networkingv1.NetworkPolicy) *networkingv1.NetworkPolicy {
		c := np.DeepCopy()
		c.TypeMeta = metav1.TypeMeta{}
		c.OwnerReferences = nil
		c.ResourceVersion = ""
		c.ManagedFields = nil
		c.Generation = 0
		c.Namespace = ""
		return c
	}
	return apiequality.Semantic.DeepEqual(strip(oldNP), strip(newNP))
}

// beingDeleted reports whether a workload in a request is on its way out:
// the updates it still receives are its finalizers being removed (by the
// garbage collector, after it deleted or orphaned the dependents). Writing
// its policies then would undo that work: it would recreate what a
// foreground deletion removed, or put back the ownerReferences an orphaning
// took off, so that the policies went with the workload after all.
func beingDeleted(o metav1.Object) bool {
	return o.GetDeletionTimestamp() != nil
}

// baselineNames are the namespace baseline's policies.
var baselineNames = []string{rules.AllowDNSPolicyName, rules.DefaultDenyPolicyName}

// unguarded says why ns gets no baseline, or "" when it does.
func (r *namespaceReconciler) unguarded(ns *metav1.PartialObjectMetadata) string {
	if r.s.cfg.namespaceExempt(ns.Name) {
		return "exempt"
	}
	if _, ok := ns.Labels[LabelIgnore]; ok {
		return "labelled " + LabelIgnore
	}
	if p, _ := rules.PolicyForNamespace(r.s.cfg.Defaults, ns.Labels); p.Enforce.Level == rules.LevelPrivileged {
		return "enforce level privileged"
	}
	return ""
}

// removeBaseline deletes the namespace baseline netguard wrote into ns, for
// a namespace that is no longer guarded: its enforce level is now
// privileged, or it is exempt or labelled netguard.io/ignore. Only policies
// labelled as netguard's are deleted; a platform team's own
// netguard-default-deny without the label is left alone.
func (r *namespaceReconciler) removeBaseline(ctx context.Context, ns, why string) error {
	for _, name := range baselineNames {
		p := policyMetadata()
		if err := r.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, p); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return err
		}
		if p.Labels[rules.LabelManagedBy] != rules.ManagedByValue || !p.DeletionTimestamp.IsZero() {
			continue
		}
		uid := p.UID
		if err := r.s.injector.client.Delete(ctx, p, client.Preconditions{UID: &uid}); err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
				continue
			}
			return fmt.Errorf("delete NetworkPolicy %s/%s: %w", ns, name, err)
		}
		logf.FromContext(ctx).Info("removed the namespace baseline policy: the namespace is no longer guarded", "policy", name, "reason", why)
	}
	return nil
}

var podListGVK = schema.GroupVersionKind{Version: "v1", Kind: "PodList"}

// orphanClaimed reports whether pods of component still run in ns: pods that
// a `--cascade=orphan` deletion left behind (their ReplicaSet, or the
// StatefulSet's or DaemonSet's pods, live on). Their generated policies are
// what lets them talk, so netguard keeps them until a workload of the same
// name adopts them or the pods are gone. One live list of at most one pod's
// metadata.
func (r *workloadReconciler) orphanClaimed(ctx context.Context, ns, component string) (bool, error) {
	if component == "" {
		return false, nil
	}
	pods := &metav1.PartialObjectMetadataList{}
	pods.SetGroupVersionKind(podListGVK)
	if err := r.s.apiReader.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{rules.LabelComponent: component}, client.Limit(1)); err != nil {
		return false, fmt.Errorf("list pods of component %q: %w", component, err)
	}
	return len(pods.Items) > 0, nil
}
