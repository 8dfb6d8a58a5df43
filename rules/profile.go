package rules

import (
	networkingv1 "k8s.io/api/networking/v1"
)

// Profile is a NetworkProfile as the generator sees it: a named, reusable set
// of NetworkPolicy rules the platform team owns and workloads opt into with
// the netguard.io/profiles annotation. The API type (api/v1alpha1) converts to
// it, so this package needs nothing from the API server.
//
// The rules apply to the pods of every component that references the profile.
// A peer with only a podSelector means pods in that component's namespace, as
// in any NetworkPolicy; a profile that reaches into another namespace says so
// with a namespaceSelector.
type Profile struct {
	Name        string
	Description string
	Ingress     []networkingv1.NetworkPolicyIngressRule
	Egress      []networkingv1.NetworkPolicyEgressRule
}
