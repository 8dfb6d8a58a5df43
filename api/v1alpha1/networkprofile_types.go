package v1alpha1

import (
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NetworkProfile is a named, reusable set of NetworkPolicy rules owned by the
// platform team. A workload that lists the profile in its netguard.io/profiles
// annotation gets the profile's ingress and egress rules for its pods, in a
// generated NetworkPolicy of the workload's namespace. Use profiles for what a
// dependency between components of one namespace cannot say: the cluster DNS,
// scraping from a monitoring namespace, an external API by CIDR, another
// team's namespace.
//
// A peer with only a podSelector means pods in the workload's own namespace,
// as in any NetworkPolicy.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=netguard
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Used-By",type=integer,JSONPath=".status.usedBy"
// +kubebuilder:printcolumn:name="Description",type=string,JSONPath=".spec.description"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type NetworkProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec NetworkProfileSpec `json:"spec"`

	// Status is written by netguard.
	// +optional
	Status NetworkProfileStatus `json:"status,omitempty"`
}

// NetworkProfileStatus says how much the profile is used. netguard's
// leader counts the users; the count lags a workload change by the time
// its informer takes.
type NetworkProfileStatus struct {
	// UsedBy is the number of workloads (Deployments, StatefulSets,
	// DaemonSets, Jobs, CronJobs, Pods) whose netguard.io/profiles
	// annotation lists the profile, plus the LocalNetworkConfig components
	// whose dependsOn lists it, in every namespace, whether or not the
	// namespace may use it.
	// +optional
	// +kubebuilder:validation:Minimum=0
	UsedBy int32 `json:"usedBy"`

	// ObservedGeneration is the metadata.generation of the profile when
	// netguard last wrote the status.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// NetworkProfileSpec holds the rules a profile grants.
//
// +kubebuilder:validation:XValidation:rule="(has(self.ingress) && size(self.ingress) > 0) || (has(self.egress) && size(self.egress) > 0)",message="a NetworkProfile needs at least one ingress or egress rule"
type NetworkProfileSpec struct {
	// Description says what the profile is for, for the people who choose it.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// Ingress rules allow traffic to the pods of every component that uses
	// the profile, with the semantics of NetworkPolicy spec.ingress.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Ingress []networkingv1.NetworkPolicyIngressRule `json:"ingress,omitempty"`

	// Egress rules allow traffic from the pods of every component that uses
	// the profile, with the semantics of NetworkPolicy spec.egress.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	Egress []networkingv1.NetworkPolicyEgressRule `json:"egress,omitempty"`

	// NamespaceSelector selects the namespaces whose workloads may use the
	// profile, by the namespaces' labels (every namespace carries
	// kubernetes.io/metadata.name: NAME). A workload of any other namespace
	// that lists the profile is denied, or warned, like one with a wrong
	// annotation. When absent, the profile is offered to every namespace, as
	// profiles were before this field existed; an empty selector ({}) means
	// every namespace too. A profile written for particular namespaces must
	// name them here.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// NetworkProfileList is a list of NetworkProfiles.
//
// +kubebuilder:object:root=true
type NetworkProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NetworkProfile `json:"items"`
}
