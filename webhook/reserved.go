package webhook

import (
	"context"
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/netguard/netguard/rules"
)

// Reserved names (rules.IsReservedPolicyName). Server-side apply takes over
// only the fields netguard sets: a policy of a generated name that someone
// created before netguard wrote it (before netguard was installed, or while
// its webhook was unreachable), or that a platform identity edited, keeps
// the other author's fields: an extra podSelector term, rules under a policy
// type netguard does not set, labels, an ownerReference that lets the
// garbage collector delete it. After each apply netguard therefore compares
// the stored object with what it wrote and, when they differ or another
// field manager holds part of its spec or labels, replaces it whole.

// replaceIfForeign replaces the stored policy applied (the apply's answer)
// with want when it is not exactly what netguard writes. The replacement is
// an update of the whole object whose managedFields name netguard's apply
// alone, so that no other manager keeps a claim on a field netguard may
// later drop. The update carries the apply's resourceVersion: a concurrent
// write makes it fail with a conflict, and the caller retries.
func (in *injector) replaceIfForeign(ctx context.Context, applied *unstructured.Unstructured, want *networkingv1.NetworkPolicy) error {
	live := &networkingv1.NetworkPolicy{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(applied.Object, live); err != nil {
		return fmt.Errorf("read the applied NetworkPolicy %s/%s: %w", want.Namespace, want.Name, err)
	}
	foreign := rules.ForeignFieldManagers(live)
	if len(foreign) == 0 && rules.SameWrittenPolicy(live, want) {
		return nil
	}
	obj := want.DeepCopy()
	obj.ResourceVersion = live.ResourceVersion
	obj.UID = live.UID
	if obj.OwnerReferences == nil && len(live.OwnerReferences) > 0 {
		// On a workload's create netguard writes without an ownerReference
		// (docs/injection.md); one that netguard set earlier stays, any
		// other goes.
		for _, ref := range live.OwnerReferences {
			if ref.APIVersion == (rules.Workload{Kind: ref.Kind}).APIVersion() && want.Annotations[rules.AnnotationWorkload] == ref.Kind+"/"+ref.Name {
				obj.OwnerReferences = append(obj.OwnerReferences, ref)
			}
		}
	}
	obj.ManagedFields = ownManagedFields(live.ManagedFields)
	if err := in.client.Update(ctx, obj, client.FieldOwner(FieldManager)); err != nil {
		return fmt.Errorf("replace NetworkPolicy %s/%s, which held fields netguard does not write: %w", want.Namespace, want.Name, err)
	}
	logf.FromContext(ctx).Info("replaced a NetworkPolicy of a reserved name that held fields netguard does not write", "namespace", want.Namespace, "policy", want.Name, "managers", foreign)
	return nil
}

// ownManagedFields keeps netguard's own entries. The API server takes an
// update's managedFields as given when they are not empty.
func ownManagedFields(entries []metav1.ManagedFieldsEntry) []metav1.ManagedFieldsEntry {
	var out []metav1.ManagedFieldsEntry
	for _, e := range entries {
		if e.Manager == FieldManager {
			out = append(out, e)
		}
	}
	return out
}
