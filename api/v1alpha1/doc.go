// Package v1alpha1 holds the netguard.io/v1alpha1 API: NetworkProfile, the
// cluster-scoped, platform-owned set of NetworkPolicy rules that workloads opt
// into with the netguard.io/profiles annotation.
//
// +kubebuilder:object:generate=true
// +groupName=netguard.io
package v1alpha1
