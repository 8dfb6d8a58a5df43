package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// LocalNetworkConfig declares the components of one namespace and the paths
// between them, for pods netguard cannot annotate: pods an operator creates,
// pods of charts you do not own. Each component selects its pods by
// spec.components.<name>.podSelector; netguard generates the NetworkPolicies
// of its dependencies at admission, keeps them true, and deletes them with
// the LocalNetworkConfig. See docs/localnetworkconfig.md.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,categories=netguard,shortName=lnc
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=".status.conditions[?(@.type==\"Ready\")].status"
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=".status.conditions[?(@.type==\"Ready\")].reason"
// +kubebuilder:printcolumn:name="Policies",type=integer,JSONPath=".status.policyCount"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=".metadata.creationTimestamp"
type LocalNetworkConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec LocalNetworkConfigSpec `json:"spec"`

	// Status is written by netguard's controller.
	// +optional
	Status LocalNetworkConfigStatus `json:"status,omitempty"`
}

// LocalNetworkConfigSpec lists the components this object declares.
type LocalNetworkConfigSpec struct {
	// Components maps a component name (a DNS-1123 label, unique in the
	// namespace across LocalNetworkConfigs and annotated workloads) to the
	// pods it selects and the paths they need.
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=64
	Components map[string]LocalComponent `json:"components"`
}

// LocalComponent is one component: a set of pods and what they connect to.
type LocalComponent struct {
	// PodSelector selects the component's pods in this namespace by their
	// labels. It must not be empty, must not overlap the selector of another
	// component of the namespace, and must not use the label
	// netguard.io/component, which belongs to annotated workloads. Pods
	// carrying that label are never selected.
	PodSelector metav1.LabelSelector `json:"podSelector"`

	// DependsOn lists what the component's pods connect to: another
	// component (with a port), or a NetworkProfile. Each entry sets exactly
	// one of component and networkProfile.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	DependsOn []LocalDependency `json:"dependsOn,omitempty"`

	// ExposeTo offers the component's ports to the components of other
	// namespaces that declare a dependency on it (dependsOn with a
	// namespace). A path opens only where both sides agree: the consumer's
	// namespace matches an entry's namespaceSelector and the port is
	// offered. See docs/security.md, cross-namespace consent.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	ExposeTo []LocalExposure `json:"exposeTo,omitempty"`
}

// LocalDependency is one dependency of a component.
//
// +kubebuilder:validation:XValidation:rule="has(self.component) != has(self.networkProfile)",message="set exactly one of component and networkProfile"
// +kubebuilder:validation:XValidation:rule="!has(self.networkProfile) || (!has(self.port) && !has(self.protocol) && !has(self.namespace))",message="a networkProfile entry takes no port, protocol or namespace: the profile says where its rules apply"
// +kubebuilder:validation:XValidation:rule="!has(self.component) || has(self.port)",message="a component entry needs a port"
type LocalDependency struct {
	// Component is the component the pods connect to, declared by a
	// LocalNetworkConfig or an annotated workload of the namespace.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Component string `json:"component,omitempty"`

	// Namespace is the namespace of Component when it is not this one: a
	// cross-namespace dependency, which opens only when the component's
	// owner there exposes the port to this namespace (netguard.io/expose-to
	// or exposeTo). The platform may turn this off or limit it by level.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace,omitempty"`

	// Port is the destination port of Component's pods: a number
	// (8080), a range "LOW-HIGH" ("9000-9010"), or a port name (http),
	// resolved at the destination pods' container ports.
	// +optional
	// +kubebuilder:validation:XIntOrString
	Port *intstr.IntOrString `json:"port,omitempty"`

	// Protocol is TCP (the default), UDP or SCTP.
	// +optional
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	Protocol string `json:"protocol,omitempty"`

	// NetworkProfile names a NetworkProfile whose rules apply to the
	// component's pods. The profile must be offered to this namespace
	// (its spec.namespaceSelector).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	NetworkProfile string `json:"networkProfile,omitempty"`
}

// LocalExposure offers ports of a component to the namespaces a selector
// picks.
type LocalExposure struct {
	// NamespaceSelector selects the namespaces, by their labels, whose
	// components may connect. It must not be empty; to offer the component
	// to every namespace say so with the expression
	// {key: kubernetes.io/metadata.name, operator: Exists}. It never appears
	// in a policy: only the consumers that match it and declare the
	// dependency are admitted.
	NamespaceSelector metav1.LabelSelector `json:"namespaceSelector"`

	// Ports are the ports offered.
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Ports []LocalExposedPort `json:"ports"`
}

// LocalExposedPort is a port, or a range of ports, of a component.
type LocalExposedPort struct {
	// Port is a port number or name.
	// +kubebuilder:validation:XIntOrString
	Port intstr.IntOrString `json:"port"`

	// EndPort, with a numeric Port, makes the range Port-EndPort.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	EndPort *int32 `json:"endPort,omitempty"`

	// Protocol is TCP (the default), UDP or SCTP.
	// +optional
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	Protocol string `json:"protocol,omitempty"`
}

// LocalNetworkConfigStatus is what netguard's controller last did.
type LocalNetworkConfigStatus struct {
	// ObservedGeneration is the metadata.generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Policies are the names of the NetworkPolicies generated for this
	// object, sorted.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=4096
	Policies []string `json:"policies,omitempty"`

	// PolicyCount is the number of generated NetworkPolicies.
	// +optional
	PolicyCount int32 `json:"policyCount,omitempty"`

	// Problems say why some or all of the declared policies are not
	// generated (at most 20; the Ready condition counts them all).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=20
	Problems []string `json:"problems,omitempty"`

	// Conditions: Ready is True when every declared policy is generated
	// and up to date.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// LocalNetworkConfigList is a list of LocalNetworkConfigs.
//
// +kubebuilder:object:root=true
type LocalNetworkConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LocalNetworkConfig `json:"items"`
}
