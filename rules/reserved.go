package rules

import (
	"encoding/json"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reserved names. netguard writes its policies with server-side apply, which
// takes over only the fields netguard sets: a policy of the same name that
// someone created first would keep its author's other fields (an extra
// selector term, an ingress list under an egress-only policy, labels, an
// ownerReference) inside an object that only netguard may change afterwards.
// So the names netguard generates are reserved: only netguard and platform
// identities may create them, and a policy of such a name that netguard did
// not write alone is replaced whole when netguard writes it (see
// docs/security.md).

// GeneratedPolicyPrefix starts the name of every policy netguard generates
// for a workload (netguard.COMPONENT.…).
const GeneratedPolicyPrefix = "netguard."

// FieldManager is the server-side apply field manager of every object
// netguard writes.
const FieldManager = "netguard"

// IsReservedPolicyName reports whether name is one netguard generates: the
// namespace baseline pair or a name starting with "netguard.".
func IsReservedPolicyName(name string) bool {
	return name == DefaultDenyPolicyName || name == AllowDNSPolicyName || strings.HasPrefix(name, GeneratedPolicyPrefix)
}

// ForeignFieldManagers returns the field managers other than netguard that
// hold fields of np's spec or labels, in the order of its managedFields. A
// policy of a reserved name with such a manager was not written by netguard
// alone: its other managers' fields survive netguard's server-side apply.
func ForeignFieldManagers(np *networkingv1.NetworkPolicy) []string {
	var out []string
	for _, e := range np.ManagedFields {
		if e.Manager == FieldManager || e.Subresource != "" || e.FieldsV1 == nil {
			continue
		}
		if holdsSpecOrLabels(e.FieldsV1) && !containsString(out, e.Manager) {
			out = append(out, e.Manager)
		}
	}
	return out
}

// holdsSpecOrLabels reports whether a managedFields entry's field set holds
// anything under spec or metadata.labels. A field set that does not decode is
// taken to hold them: replacing netguard's own policy is harmless, keeping a
// stranger's fields is not.
func holdsSpecOrLabels(f *metav1.FieldsV1) bool {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(f.GetRawBytes(), &top); err != nil {
		return true
	}
	if _, ok := top["f:spec"]; ok {
		return true
	}
	meta, ok := top["f:metadata"]
	if !ok {
		return false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(meta, &m); err != nil {
		return true
	}
	_, ok = m["f:labels"]
	return ok
}

// SameWrittenPolicy reports whether live is exactly want as netguard writes
// it: the same spec (as the API server stores it) and the same labels.
// Annotations other than netguard's and owner references are not compared.
func SameWrittenPolicy(live, want *networkingv1.NetworkPolicy) bool {
	if len(live.Labels) != len(want.Labels) {
		return false
	}
	for k, v := range want.Labels {
		if lv, ok := live.Labels[k]; !ok || lv != v {
			return false
		}
	}
	return sameSpec(live.Spec, want.Spec)
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
