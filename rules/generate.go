package rules

// The generator turns a workload's netguard.io annotations and the
// NetworkProfiles it references into NetworkPolicies. It is pure: the webhook,
// `netguard generate` and `netguard reach` call it with objects they decoded.
//
// Ownership. A dependency "web depends on api:8080" needs two rules: egress
// from web's pods and ingress to api's pods. Both come from web's annotation,
// so web owns both: they are created, changed and deleted with web, and api's
// owner never has to know who calls it. That is why a workload's policies can
// select another component's pods.
//
// Names (C is the component, T a component it depends on, P a profile):
//
//	netguard.C.depends-on   egress of C's pods to every T it depends on
//	netguard.C.to.T         ingress to T's pods from C's pods
//	netguard.C.profile.P    P's ingress and egress rules for C's pods
//
// Components are DNS-1123 labels and cannot contain dots, so these names never
// collide with each other or with the namespace baseline (netguard-default-deny,
// netguard-allow-dns). A name longer than 253 characters (only a long profile
// name can cause that) is cut and given a hash suffix.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Workload is what the generator needs to know about a Deployment,
// StatefulSet, DaemonSet, Job, CronJob or Pod (WorkloadKinds).
type Workload struct {
	Kind        string // "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob" or "Pod"
	Namespace   string
	Name        string
	UID         types.UID // when set, generated policies get an ownerReference
	Annotations map[string]string
	// Created is the workload's creationTimestamp, zero while it is being
	// created. It decides which of two claimants owns a component
	// (ComponentOwner).
	Created time.Time
	// NamespaceLabels are the labels of the workload's namespace, which
	// decide which NetworkProfiles it may use and which exposures of other
	// namespaces match it. Nil means unknown: only the
	// kubernetes.io/metadata.name label, which every namespace carries, is
	// assumed.
	NamespaceLabels map[string]string
	// Components resolves the pod selectors of the components it depends
	// on (CollectComponents): a component a LocalNetworkConfig declares is
	// selected by its podSelector. Nil, or a component not in it, is
	// selected by the netguard.io/component label.
	Components ComponentIndex
	// Consent is what other namespaces declare towards this workload
	// (consent.go); nil means nothing is known, so its cross-namespace
	// declarations open nothing.
	Consent *Consent
}

// Ref names the workload for people: "Deployment/web".
func (w Workload) Ref() string { return w.Kind + "/" + w.Name }

// APIVersion is the apiVersion of w's kind: "apps/v1", "batch/v1" or "v1"
// ("apps/v1" for a kind netguard does not know).
func (w Workload) APIVersion() string {
	if k, ok := LookupWorkloadKind(w.Kind); ok {
		return k.APIVersion()
	}
	return "apps/v1"
}

// WorkloadFromObject reads a typed apps/v1 Deployment, StatefulSet or
// DaemonSet, batch/v1 Job or CronJob, or v1 Pod. It returns false for any
// other object, and for a Pod or Job that a controller made from a template
// netguard handles (TemplateOwner): that template was handled.
func WorkloadFromObject(obj runtime.Object) (Workload, bool) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return Workload{}, false
	}
	if _, _, ok := PodTemplate(obj); !ok {
		return Workload{}, false
	}
	kind := ""
	switch obj.(type) {
	case *appsv1.Deployment:
		kind = "Deployment"
	case *appsv1.StatefulSet:
		kind = "StatefulSet"
	case *appsv1.DaemonSet:
		kind = "DaemonSet"
	case *batchv1.Job:
		kind = "Job"
	case *batchv1.CronJob:
		kind = "CronJob"
	case *corev1.Pod:
		kind = "Pod"
	}
	if _, owned := TemplateOwner(kind, m.GetOwnerReferences()); owned {
		return Workload{}, false
	}
	return Workload{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName(), UID: m.GetUID(), Annotations: m.GetAnnotations(), Created: m.GetCreationTimestamp().Time}, true
}

// Generated is the generator's result for one workload.
type Generated struct {
	// Component is the workload's component, "" when it could not be
	// determined.
	Component string
	// Policies are sorted by name.
	Policies []*networkingv1.NetworkPolicy
	// Digest is a hex SHA-256 of the policies' names and specs. It changes
	// exactly when what the policies allow changes.
	Digest string
	// Warnings are things that were accepted but are probably mistakes.
	Warnings []string
	// OneSided are the cross-namespace declarations that open nothing
	// (consent.go), as audit findings; their messages are in Warnings too.
	OneSided []Violation
}

// Generate returns the NetworkPolicies that w's annotations declare. profiles
// maps NetworkProfile names to profiles; a reference to a profile not in it is
// an error. A workload without netguard.io annotations yields nothing. Errors
// have paths below "metadata"; on error no policies are returned.
//
// The policies open exactly what the annotations and profiles say: they only
// ever allow, so everything else stays denied by the namespace's default-deny
// policy (see NamespaceBaseline).
func Generate(w Workload, profiles map[string]Profile) (Generated, field.ErrorList) {
	if !IsAnnotated(w.Annotations) {
		return Generated{}, nil
	}
	metaPath := field.NewPath("metadata")
	ann, warnings, errs := ParseAnnotations(w.Name, w.Annotations, metaPath)
	out := Generated{Component: ann.Component, Warnings: warnings}
	used := make([]Profile, 0, len(ann.Profiles))
	for _, name := range ann.Profiles {
		p, ok := profiles[name]
		if !ok {
			errs = append(errs, MissingProfile(metaPath.Child("annotations").Key(AnnotationProfiles), name))
			continue
		}
		if err := profileScopeError(p, w, metaPath.Child("annotations").Key(AnnotationProfiles)); err != nil {
			errs = append(errs, err)
			continue
		}
		if len(p.Ingress) == 0 && len(p.Egress) == 0 {
			out.Warnings = append(out.Warnings, fmt.Sprintf("%s: NetworkProfile %q has no rules", AnnotationProfiles, name))
		}
		used = append(used, p)
	}
	if len(errs) > 0 {
		return out, errs
	}

	c := ann.Component
	local, remote := splitDependencies(w.Namespace, ann.DependsOn)
	policies, oneSided := consentPolicies(workloadSubject(w, c), remote, ann.ExposeTo, w.Consent)
	out.OneSided = oneSided
	for _, v := range oneSided {
		out.Warnings = append(out.Warnings, v.Message)
	}
	if len(local) > 0 {
		own := newPolicy(w, c, "netguard."+c+".depends-on", c)
		own.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
		for _, g := range groupByComponent(local) {
			own.Spec.Egress = append(own.Spec.Egress, networkingv1.NetworkPolicyEgressRule{
				To:    []networkingv1.NetworkPolicyPeer{{PodSelector: w.Components.selector(g.component)}},
				Ports: g.ports,
			})
			in := newPolicy(w, c, "netguard."+c+".to."+g.component, g.component)
			in.Spec.PodSelector = *w.Components.selector(g.component)
			in.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
			in.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: componentSelector(c)}},
				Ports: clonePorts(g.ports),
			}}
			policies = append(policies, in)
		}
		policies = append(policies, own)
	}
	for _, p := range used {
		if len(p.Ingress) == 0 && len(p.Egress) == 0 {
			continue
		}
		pol := newPolicy(w, c, "netguard."+c+".profile."+p.Name, c)
		if len(p.Ingress) > 0 {
			pol.Spec.PolicyTypes = append(pol.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
			for i := range p.Ingress {
				pol.Spec.Ingress = append(pol.Spec.Ingress, *p.Ingress[i].DeepCopy())
			}
		}
		if len(p.Egress) > 0 {
			pol.Spec.PolicyTypes = append(pol.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
			for i := range p.Egress {
				pol.Spec.Egress = append(pol.Spec.Egress, *p.Egress[i].DeepCopy())
			}
		}
		policies = append(policies, pol)
	}
	sort.Slice(policies, func(i, j int) bool { return policies[i].Name < policies[j].Name })
	out.Policies = policies
	out.Digest = Digest(policies)
	return out, nil
}

// Digest is a hex SHA-256 of the names and specs of policies, in the order
// given. Labels, annotations and owner references do not count: they do not
// change what the policies allow.
func Digest(policies []*networkingv1.NetworkPolicy) string {
	type entry struct {
		Namespace string                         `json:"namespace"`
		Name      string                         `json:"name"`
		Spec      networkingv1.NetworkPolicySpec `json:"spec"`
	}
	entries := make([]entry, 0, len(policies))
	for _, p := range policies {
		entries = append(entries, entry{Namespace: p.Namespace, Name: p.Name, Spec: p.Spec})
	}
	b, err := json.Marshal(entries)
	if err != nil {
		// A NetworkPolicySpec always marshals; this is unreachable.
		panic(fmt.Sprintf("netguard: marshal policy specs: %v", err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

type componentPorts struct {
	component string
	ports     []networkingv1.NetworkPolicyPort
}

// groupByComponent turns sorted dependencies into one port list per target
// component, in component order.
func groupByComponent(deps []Dependency) []componentPorts {
	var out []componentPorts
	for _, d := range deps {
		if len(out) == 0 || out[len(out)-1].component != d.Component {
			out = append(out, componentPorts{component: d.Component})
		}
		g := &out[len(out)-1]
		proto := d.Protocol
		port := d.Port
		np := networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &port}
		if d.EndPort != 0 {
			end := d.EndPort
			np.EndPort = &end
		}
		g.ports = append(g.ports, np)
	}
	return out
}

func clonePorts(in []networkingv1.NetworkPolicyPort) []networkingv1.NetworkPolicyPort {
	out := make([]networkingv1.NetworkPolicyPort, len(in))
	for i := range in {
		in[i].DeepCopyInto(&out[i])
	}
	return out
}

func componentSelector(component string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{LabelComponent: component}}
}

// newPolicy starts a policy owned by w (component owner) that selects the
// pods of component selected.
func newPolicy(w Workload, owner, name, selected string) *networkingv1.NetworkPolicy {
	p := &networkingv1.NetworkPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        policyName(name),
			Namespace:   w.Namespace,
			Labels:      map[string]string{LabelManagedBy: ManagedByValue, LabelComponent: owner},
			Annotations: map[string]string{AnnotationWorkload: w.Ref()},
		},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: *componentSelector(selected)},
	}
	if w.UID != "" {
		no := false
		p.OwnerReferences = []metav1.OwnerReference{{
			APIVersion:         w.APIVersion(),
			Kind:               w.Kind,
			Name:               w.Name,
			UID:                w.UID,
			Controller:         &no,
			BlockOwnerDeletion: &no,
		}}
	}
	return p
}

// policyName keeps name a valid object name: at most 253 characters, cut and
// suffixed with a hash of the whole name when longer.
func policyName(name string) string {
	if len(name) <= validation.DNS1123SubdomainMaxLength {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:])[:10]
	cut := name[:validation.DNS1123SubdomainMaxLength-len(suffix)]
	// The cut may end in '.' or '-', which may not precede the suffix's '-'
	// after a dot ("a.-b" is not a DNS-1123 subdomain).
	for len(cut) > 0 && (cut[len(cut)-1] == '.' || cut[len(cut)-1] == '-') {
		cut = cut[:len(cut)-1]
	}
	return cut + suffix
}

// DNSOptions say where the cluster DNS runs. Zero fields take the defaults:
// namespace kube-system (by its kubernetes.io/metadata.name label), pods
// labelled k8s-app=kube-dns, ports 53/UDP and 53/TCP.
type DNSOptions struct {
	NamespaceSelector *metav1.LabelSelector
	PodSelector       *metav1.LabelSelector
	Ports             []networkingv1.NetworkPolicyPort
}

// BaselineOptions configure NamespaceBaseline.
type BaselineOptions struct {
	DNS DNSOptions
}

// NamespaceBaseline returns the policies every namespace with generated
// policies needs, sorted by name: netguard-allow-dns, which lets every pod
// query the cluster DNS, and netguard-default-deny, which selects every pod
// for ingress and egress and allows nothing, so that only what generated
// policies open is open.
func NamespaceBaseline(namespace string, opts BaselineOptions) []*networkingv1.NetworkPolicy {
	labels := func() map[string]string { return map[string]string{LabelManagedBy: ManagedByValue} }
	deny := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: DefaultDenyPolicyName, Namespace: namespace, Labels: labels()},
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
	dns := opts.DNS
	nsSel := dns.NamespaceSelector
	if nsSel == nil {
		nsSel = &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "kube-system"}}
	}
	podSel := dns.PodSelector
	if podSel == nil {
		podSel = &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}}
	}
	ports := clonePorts(dns.Ports)
	if len(ports) == 0 {
		udp, tcp := corev1.ProtocolUDP, corev1.ProtocolTCP
		p53a, p53b := intstr.FromInt32(53), intstr.FromInt32(53)
		ports = []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &p53a}, {Protocol: &tcp, Port: &p53b}}
	}
	allow := &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: AllowDNSPolicyName, Namespace: namespace, Labels: labels()},
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: nsSel.DeepCopy(), PodSelector: podSel.DeepCopy()}},
				Ports: ports,
			}},
		},
	}
	return []*networkingv1.NetworkPolicy{allow, deny}
}

// SetFinding is something only a whole set of workloads shows; see
// CheckWorkloadSet.
type SetFinding struct {
	// Index is the workload's position in the slice given to CheckWorkloadSet.
	Index int
	// Error is set for an error, nil for a warning.
	Error *field.Error
	// Warning is set for a warning.
	Warning string
}

// CheckWorkloadSet looks at the annotated workloads of an input set (a
// directory of manifests, a namespace) together and reports:
//   - an error for each workload that claims a component another workload of
//     its namespace owns (see ComponentOwner: the earlier creationTimestamp,
//     then kind and name);
//   - a warning for each dependency on a component no workload of the
//     namespace declares (its policies would select no pods), naming the
//     workload when one of that name exists without netguard annotations.
//
// ws may include workloads without netguard annotations: they claim nothing
// but are named in those warnings.
//
// Workloads whose annotations do not parse are skipped, except that they
// still claim their component: Generate reports their errors.
//
// locals are the input's LocalNetworkConfigs: the components they declare
// count as declared, and a workload claiming one that a LocalNetworkConfig
// owns is an error too.
func CheckWorkloadSet(ws []Workload, locals ...LocalConfig) []SetFinding {
	type claim struct {
		index     int
		component string
		deps      []Dependency
	}
	var (
		claims   []claim
		declared = map[string]map[string]int{} // namespace -> component -> owner's index
		out      []SetFinding
	)
	conflicts := componentConflicts(ws)
	for _, i := range conflictIndexes(conflicts) {
		w, owner := ws[i], ws[conflicts[i]]
		c, _ := ClaimedComponent(w)
		out = append(out, SetFinding{Index: i, Error: DuplicateComponent(w, c, owner)})
	}
	if len(locals) > 0 {
		byNS := map[string][]LocalConfig{}
		for _, l := range locals {
			byNS[l.Namespace] = append(byNS[l.Namespace], l)
		}
		for ns, ls := range byNS {
			var here []Workload
			for _, w := range ws {
				if w.Namespace == ns {
					here = append(here, w)
				}
			}
			nc := CollectComponents(here, ls)
			for c, owner := range nc.Owners {
				if owner.Kind != KindLocalNetworkConfig {
					continue
				}
				if declared[ns] == nil {
					declared[ns] = map[string]int{}
				}
				declared[ns][c] = -1
				for i, w := range ws {
					if _, dup := conflicts[i]; dup || w.Namespace != ns {
						continue
					}
					if wc, ok := ClaimedComponent(w); ok && wc == c {
						conflicts[i] = -1
						out = append(out, SetFinding{Index: i, Error: DuplicateComponent(w, c, owner)})
					}
				}
			}
		}
	}
	metaPath := field.NewPath("metadata")
	unannotated := map[string]map[string]string{} // namespace -> workload name -> ref
	for i, w := range ws {
		if !IsAnnotated(w.Annotations) {
			if unannotated[w.Namespace] == nil {
				unannotated[w.Namespace] = map[string]string{}
			}
			if _, ok := unannotated[w.Namespace][w.Name]; !ok {
				unannotated[w.Namespace][w.Name] = w.Ref()
			}
			continue
		}
		c, ok := ClaimedComponent(w)
		if !ok {
			continue
		}
		if declared[w.Namespace] == nil {
			declared[w.Namespace] = map[string]int{}
		}
		if _, dup := conflicts[i]; dup {
			continue
		}
		declared[w.Namespace][c] = i
		ann, _, errs := ParseAnnotations(w.Name, w.Annotations, metaPath)
		if len(errs) > 0 {
			continue
		}
		claims = append(claims, claim{index: i, component: ann.Component, deps: ann.DependsOn})
	}
	for _, c := range claims {
		w := ws[c.index]
		declaredHere := func(component string) bool { _, ok := declared[w.Namespace][component]; return ok }
		plain := func(name string) string { return unannotated[w.Namespace][name] }
		for _, msg := range UndeclaredDependencies(w.Namespace, c.deps, declaredHere, plain) {
			out = append(out, SetFinding{Index: c.index, Warning: msg})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}
