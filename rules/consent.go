package rules

// Cross-namespace dependencies by consent. A path between two namespaces
// opens only when both sides declare it, each in its own namespace:
//
//   - the consumer names the provider in netguard.io/depends-on as
//     NAMESPACE/COMPONENT:PORT (kannika-system/event-gateway:8082);
//   - the provider component exposes itself in netguard.io/expose-to (or a
//     second declaration source such as a LocalNetworkConfig fills Exposure):
//     a namespace selector and the ports offered to the namespaces it selects.
//
// The path is agreed when the consumer's namespace matches an exposure's
// selector and the dependency's port lies within that exposure's ports; the
// agreed ports are the intersection. Each side's policy is generated in its
// own namespace and owned by its own workload:
//
//	netguard.C.cross-namespace-egress    egress of consumer C to every agreed provider
//	                                     (namespace by its kubernetes.io/metadata.name, component by its label)
//	netguard.P.cross-namespace-ingress   ingress to provider P from exactly the agreed consumers
//	                                     (never from the whole expose-to selector)
//
// A one-sided declaration (no provider, no matching exposure, a port not
// exposed, consent closed by the platform) generates nothing for that path
// and is a warning at admission and a finding in the audit.
//
// Neither side can widen the other: the consumer's policy only allows egress
// from its own pods, the provider's only ingress to its own pods, and each
// opens only what its own namespace declared and the other side matched.
// Who may use consent at all is the platform's choice (CrossNamespaceConfig).
//
// The generator does not read the cluster: the caller finds the other side
// (the webhook from its informer cache, `netguard check` from its files) and
// passes it in Workload.Consent.

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// AnnotationExposeTo declares which namespaces' components may depend on this
// component across the namespace boundary, and on which ports.
const AnnotationExposeTo = "netguard.io/expose-to"

// Limits that bound what consent costs: a provider's generated ingress policy
// grows with its consumers, and the controller reconciles a provider when a
// consumer changes.
const (
	// MaxExposuresPerComponent bounds the entries of one expose-to.
	MaxExposuresPerComponent = 16
	// MaxPortsPerExposure bounds the ports of one expose-to entry.
	MaxPortsPerExposure = 32
	// MaxCrossNamespaceTargets bounds the distinct NAMESPACE/COMPONENT
	// targets of one workload's depends-on.
	MaxCrossNamespaceTargets = 32
	// MaxConsumersPerComponent bounds the consumers a provider's ingress
	// policy admits; further consumers (in namespace, then component order)
	// are left out and reported.
	MaxConsumersPerComponent = 128
)

// Exposure is one provider-side consent: the components of namespaces that
// NamespaceSelector selects may reach this component on Ports.
type Exposure struct {
	// NamespaceSelector selects consumer namespaces by their labels. It is
	// never put into a policy: only the consumers that match it and declare
	// the dependency are.
	NamespaceSelector *metav1.LabelSelector
	// Ports offered; a port whose Port is nil offers every port of its
	// protocol. Protocol nil means TCP.
	Ports []networkingv1.NetworkPolicyPort
}

// String renders the exposure in the annotation's form:
// "kubernetes.io/metadata.name=kannika-data:8082,9000".
func (e Exposure) String() string {
	ports := make([]string, 0, len(e.Ports))
	for _, p := range e.Ports {
		ports = append(ports, portString(p))
	}
	return metav1.FormatLabelSelector(e.NamespaceSelector) + ":" + strings.Join(ports, ",")
}

func portString(p networkingv1.NetworkPolicyPort) string {
	proto := corev1.ProtocolTCP
	if p.Protocol != nil {
		proto = *p.Protocol
	}
	s := "*"
	if p.Port != nil {
		s = p.Port.String()
		if p.EndPort != nil && *p.EndPort > p.Port.IntVal {
			s += fmt.Sprintf("-%d", *p.EndPort)
		}
	}
	if proto != corev1.ProtocolTCP {
		s += "/" + string(proto)
	}
	return s
}

// ParseExposeTo parses a netguard.io/expose-to value. Entries are separated by
// semicolons or newlines and have the form SELECTOR:PORTS, where SELECTOR is a
// label selector over namespace labels in kubectl's syntax and PORTS is a
// comma-separated list of PORT[/PROTOCOL] as in depends-on:
//
//	kubernetes.io/metadata.name=kannika-data:8082
//	kubernetes.io/metadata.name in (kannika-data, kannika-test):9000,8082
//	team=payments:http;tier=batch:5432
//
// A label key and value cannot hold a colon, so the last colon of an entry
// ends the selector. A bare word ("kannika-data:8082") would select every
// namespace that has a label of that name: it is refused with the selector
// that was probably meant.
func ParseExposeTo(value string, fldPath *field.Path) ([]Exposure, []string, field.ErrorList) {
	if len(value) > maxAnnotationValueLength {
		return nil, nil, field.ErrorList{field.TooLong(fldPath, "", maxAnnotationValueLength)}
	}
	if msg := badCharacters(value); msg != "" {
		return nil, nil, field.ErrorList{field.Invalid(fldPath, shown(value), msg)}
	}
	var entries []string
	for _, e := range strings.FieldsFunc(value, func(r rune) bool { return r == ';' || r == '\n' || r == '\r' }) {
		if e = strings.TrimSpace(e); e != "" {
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 {
		return nil, nil, field.ErrorList{field.Required(fldPath, "must list at least one SELECTOR:PORTS entry, e.g. kubernetes.io/metadata.name=kannika-data:8082; remove the annotation to expose nothing")}
	}
	if len(entries) > MaxExposuresPerComponent {
		return nil, nil, field.ErrorList{field.TooMany(fldPath, len(entries), MaxExposuresPerComponent)}
	}
	var (
		out      []Exposure
		warnings []string
		errs     field.ErrorList
		seen     = map[string]bool{}
	)
	for _, entry := range entries {
		e, msg := parseExposure(entry)
		if msg != "" {
			errs = append(errs, field.Invalid(fldPath, shown(entry), msg))
			continue
		}
		key := e.String()
		if seen[key] {
			warnings = append(warnings, fmt.Sprintf("%s: %q is listed more than once", AnnotationExposeTo, key))
			continue
		}
		seen[key] = true
		out = append(out, e)
	}
	if len(errs) > 0 {
		return nil, warnings, errs
	}
	return out, warnings, nil
}

const exposeForm = "must be SELECTOR:PORT[,PORT...], e.g. kubernetes.io/metadata.name=kannika-data:8082"

func parseExposure(entry string) (Exposure, string) {
	i := strings.LastIndexByte(entry, ':')
	if i < 0 {
		return Exposure{}, exposeForm
	}
	selText, portsText := strings.TrimSpace(entry[:i]), strings.TrimSpace(entry[i+1:])
	if selText == "" {
		return Exposure{}, "namespace selector is missing; " + exposeForm + " (kubernetes.io/metadata.name with no value exposes to every namespace)"
	}
	sel, err := metav1.ParseToLabelSelector(selText)
	if err != nil {
		return Exposure{}, fmt.Sprintf("namespace selector %q does not parse: %v; %s", shown(selText), err, exposeForm)
	}
	if n := len(sel.MatchLabels) + len(sel.MatchExpressions); n > MaxRequirementsPerSelector {
		return Exposure{}, fmt.Sprintf("namespace selector has %d requirements; netguard allows at most %d", n, MaxRequirementsPerSelector)
	}
	if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 1 {
		if r := sel.MatchExpressions[0]; r.Operator == metav1.LabelSelectorOpExists && !strings.Contains(r.Key, "/") {
			return Exposure{}, fmt.Sprintf("namespace selector %q selects every namespace that has a label named %q, which is probably not meant; to expose to the namespace %q write %s=%s", shown(selText), shown(r.Key), shown(r.Key), corev1.LabelMetadataName, shown(r.Key))
		}
	}
	tokens := strings.FieldsFunc(portsText, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(tokens) == 0 {
		return Exposure{}, "ports are missing; " + exposeForm
	}
	if len(tokens) > MaxPortsPerExposure {
		return Exposure{}, fmt.Sprintf("lists %d ports; netguard allows at most %d per entry: use ranges LOW-HIGH", len(tokens), MaxPortsPerExposure)
	}
	e := Exposure{NamespaceSelector: sel}
	var deps []Dependency
	for _, tok := range tokens {
		d, msg := parseDependency("x:" + tok)
		if msg != "" {
			return Exposure{}, fmt.Sprintf("port %q: %s", shown(tok), strings.TrimSuffix(msg, "; must be COMPONENT:PORT[/PROTOCOL], e.g. backend:8080 or dns:53/UDP"))
		}
		deps = append(deps, d)
	}
	sort.Slice(deps, func(i, j int) bool { return deps[i].less(deps[j]) })
	for _, g := range groupByComponent(deps) {
		e.Ports = append(e.Ports, g.ports...)
	}
	return e, ""
}

// CrossNamespaceConfig is the platform's grant for consent (netguard's
// configuration, crossNamespace). The zero value allows consent at every
// level.
type CrossNamespaceConfig struct {
	// Disabled closes every cross-namespace path declared by consent.
	Disabled bool
	// MaxLevel is the strictest enforce level of a namespace whose workloads
	// may open cross-namespace paths by consent, as consumer or provider. ""
	// means every level.
	MaxLevel Level
}

// Closed says why the platform closes consent for a namespace whose enforce
// level is level, or returns "".
func (c CrossNamespaceConfig) Closed(namespace string, level Level) string {
	if c.Disabled {
		return "the platform has turned cross-namespace consent off (crossNamespace.enabled: false)"
	}
	if c.MaxLevel != "" && level.Rank() > c.MaxLevel.Rank() {
		return fmt.Sprintf("namespace %q enforces %q and the platform allows cross-namespace consent up to %q (crossNamespace.maxLevel)", namespace, level, c.MaxLevel)
	}
	return ""
}

// Consent is what other namespaces declare that concerns one workload, as the
// caller found it. A nil Consent means nothing is known: every
// cross-namespace declaration of the workload is one-sided.
type Consent struct {
	// Closed, when not "", says why the platform closes consent for the
	// workload's own namespace: nothing crosses.
	Closed string
	// Providers holds, for each NAMESPACE/COMPONENT the workload's
	// depends-on names (Dependency.Target), the workload that owns that
	// component there. A target missing from the map has no provider.
	Providers map[string]Provider
	// Consumers are the components of other namespaces whose depends-on
	// names this workload's component.
	Consumers []Consumer
}

// Provider is the owner of a component that a consumer depends on.
type Provider struct {
	// Ref names the declaring object in its namespace, e.g.
	// "Deployment/event-gateway".
	Ref string
	// Exposures are its consents; none means the component exposes nothing.
	Exposures []Exposure
	// Closed, when not "", says why the platform closes consent for the
	// provider's namespace.
	Closed string
	// Selector selects the component's pods in its namespace: nil for an
	// annotated workload's (netguard.io/component), a LocalNetworkConfig
	// component's effective podSelector otherwise.
	Selector *metav1.LabelSelector
}

// Consumer is a component of another namespace that depends on a provider.
type Consumer struct {
	Namespace string
	// NamespaceLabels are the labels of the consumer's namespace, which the
	// provider's selectors are matched against (nil: only its
	// kubernetes.io/metadata.name label is assumed).
	NamespaceLabels map[string]string
	Component       string
	// Ref names the declaring object, e.g. "Deployment/backup".
	Ref string
	// DependsOn are the consumer's dependencies; only those naming the
	// provider count.
	DependsOn []Dependency
	// Closed, when not "", says why the platform closes consent for the
	// consumer's namespace.
	Closed string
	// Selector selects the consumer's pods, as Provider.Selector.
	Selector *metav1.LabelSelector
}

// namespaceLabelsOf returns the labels selectors see for a namespace:
// nsLabels with kubernetes.io/metadata.name set, as the API server sets it.
func namespaceLabelsOf(namespace string, nsLabels map[string]string) labels.Set {
	out := make(labels.Set, len(nsLabels)+1)
	for k, v := range nsLabels {
		out[k] = v
	}
	out[corev1.LabelMetadataName] = namespace
	return out
}

// AgreedPorts returns the ports on which the consumer namespace (with its
// labels) may reach a provider that exposes exposures, for the dependency
// d: the intersection of d's port with the ports of every exposure whose
// selector matches the namespace, sorted and deduplicated. Nil means no
// agreement. A named port agrees only with the same name (or an exposure of
// every port): names are resolved at the provider's pods.
func AgreedPorts(consumerNamespace string, consumerLabels map[string]string, d Dependency, exposures []Exposure) []networkingv1.NetworkPolicyPort {
	deps := agreedDependencies(consumerNamespace, consumerLabels, d, exposures)
	if len(deps) == 0 {
		return nil
	}
	sort.Slice(deps, func(i, j int) bool { return deps[i].less(deps[j]) })
	return groupByComponent(compactDependencies(deps))[0].ports
}

// intersectPort is d's port within p, as a dependency on the same target.
func intersectPort(d Dependency, p networkingv1.NetworkPolicyPort) (Dependency, bool) {
	proto := corev1.ProtocolTCP
	if p.Protocol != nil {
		proto = *p.Protocol
	}
	if proto != d.Protocol {
		return Dependency{}, false
	}
	if p.Port == nil {
		return d, true
	}
	if d.Port.Type == intstr.String || p.Port.Type == intstr.String {
		return d, d.Port.Type == p.Port.Type && d.Port.StrVal == p.Port.StrVal
	}
	lo, hi := d.Port.IntVal, d.Port.IntVal
	if d.EndPort != 0 {
		hi = d.EndPort
	}
	a, b := p.Port.IntVal, p.Port.IntVal
	if p.EndPort != nil && *p.EndPort > a {
		b = *p.EndPort
	}
	lo, hi = max(lo, a), min(hi, b)
	if lo > hi {
		return Dependency{}, false
	}
	out := d
	out.Port = intstr.FromInt32(lo)
	out.EndPort = 0
	if hi > lo {
		out.EndPort = hi
	}
	return out, true
}

// splitDependencies separates the dependencies on the workload's own
// namespace (returned with Namespace cleared) from those on other
// namespaces. Both keep their order.
func splitDependencies(namespace string, deps []Dependency) (local, remote []Dependency) {
	for _, d := range deps {
		if d.Namespace == "" || d.Namespace == namespace {
			d.Namespace = ""
			local = append(local, d)
			continue
		}
		remote = append(remote, d)
	}
	// A qualified dependency on the own namespace may now sort out of
	// place or duplicate an unqualified one.
	sort.Slice(local, func(i, j int) bool { return local[i].less(local[j]) })
	local = compactDependencies(local)
	return local, remote
}

// RemoteDependencies returns the dependencies of a declarer of namespace on
// other namespaces, in their order.
func RemoteDependencies(namespace string, deps []Dependency) []Dependency {
	_, remote := splitDependencies(namespace, deps)
	return remote
}

// CrossNamespaceTargets returns the distinct NAMESPACE/COMPONENT targets of
// the dependencies of a workload of namespace on other namespaces, sorted.
func CrossNamespaceTargets(namespace string, deps []Dependency) []string {
	_, remote := splitDependencies(namespace, deps)
	var out []string
	for _, d := range remote {
		if len(out) == 0 || out[len(out)-1] != d.Target() {
			out = append(out, d.Target())
		}
	}
	return out
}

// HasConsentDeclarations reports cheaply, without parsing, whether
// annotations may declare anything across namespaces: an expose-to, or a
// depends-on entry with a namespace.
func HasConsentDeclarations(annotations map[string]string) bool {
	if _, ok := annotations[AnnotationExposeTo]; ok {
		return true
	}
	// NAMESPACE/COMPONENT:PORT names another namespace before the port; a
	// "/" after the colon is a protocol (api:53/UDP), which keeps the
	// workload in its namespace. Anything else with a "/" counts, so that
	// a malformed entry is never taken for a local one.
	for _, entry := range strings.FieldsFunc(annotations[AnnotationDependsOn], func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	}) {
		slash := strings.IndexByte(entry, '/')
		if slash < 0 {
			continue
		}
		if colon := strings.IndexByte(entry, ':'); colon < 0 || slash < colon {
			return true
		}
	}
	return false
}

func compactDependencies(deps []Dependency) []Dependency {
	out := deps[:0]
	for i, d := range deps {
		if i > 0 && d.String() == deps[i-1].String() {
			continue
		}
		out = append(out, d)
	}
	return out
}

// Names of the cross-namespace policies of component c.
func crossNamespaceEgressName(c string) string {
	return GeneratedPolicyPrefix + c + ".cross-namespace-egress"
}
func crossNamespaceIngressName(c string) string {
	return GeneratedPolicyPrefix + c + ".cross-namespace-ingress"
}

// IsCrossNamespacePolicy reports whether name is a consent policy of
// component c.
func IsCrossNamespacePolicy(name, c string) bool {
	return name == crossNamespaceEgressName(c) || name == crossNamespaceIngressName(c)
}

// namespacePeer selects the pods of component in namespace, by the
// namespace's kubernetes.io/metadata.name, which the API server sets and no
// one can change, and by sel, the component's pods there (nil: the
// netguard.io/component label of an annotated workload's pods).
func namespacePeer(namespace, component string, sel *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	if sel == nil {
		sel = componentSelector(component)
	}
	return networkingv1.NetworkPolicyPeer{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: namespace}},
		PodSelector:       sel.DeepCopy(),
	}
}

// consentSubject is the side consentPolicies generates for: one component
// of one namespace, declared by annotations or by a LocalNetworkConfig.
type consentSubject struct {
	namespace       string
	namespaceLabels map[string]string
	component       string
	// policy starts a policy named name of the component's owner that
	// selects the component's pods.
	policy func(name string) *networkingv1.NetworkPolicy
	// dependsOn and exposeTo are the declarations' field paths, and
	// dependsOnName and exposeToName how a message names them.
	dependsOn, exposeTo         string
	dependsOnName, exposeToName string
	// declarer names what may declare a provider, in "no ... in namespace
	// X declares component Y".
	declarer string
}

// workloadSubject is the subject for annotated workload w of component c.
func workloadSubject(w Workload, c string) consentSubject {
	annPath := field.NewPath("metadata", "annotations")
	return consentSubject{
		namespace: w.Namespace, namespaceLabels: w.NamespaceLabels, component: c,
		policy:    func(name string) *networkingv1.NetworkPolicy { return newPolicy(w, c, name, c) },
		dependsOn: annPath.Key(AnnotationDependsOn).String(), exposeTo: annPath.Key(AnnotationExposeTo).String(),
		dependsOnName: AnnotationDependsOn, exposeToName: AnnotationExposeTo,
		declarer: "workload",
	}
}

// consentPolicies generates the cross-namespace policies of the subject
// component, from its dependencies on other namespaces (remote) and its
// exposures, and the other sides found in consent. Every declaration that
// opens nothing is a warning.
func consentPolicies(s consentSubject, remote []Dependency, exposures []Exposure, consent *Consent) ([]*networkingv1.NetworkPolicy, []Violation) {
	var (
		policies []*networkingv1.NetworkPolicy
		warnings []Violation
	)
	c := s.component
	warn := func(at, format string, args ...any) {
		warnings = append(warnings, Violation{Rule: AuditOneSidedConsent, Field: at, Message: fmt.Sprintf(format, args...)})
	}
	if len(remote) == 0 && len(exposures) == 0 {
		return nil, nil
	}
	if consent != nil && consent.Closed != "" {
		for _, d := range remote {
			warn(s.dependsOn, "%s: %q opens nothing: %s", s.dependsOnName, d.String(), consent.Closed)
		}
		if len(exposures) > 0 {
			warn(s.exposeTo, "%s: opens nothing: %s", s.exposeToName, consent.Closed)
		}
		return nil, warnings
	}
	if len(remote) > 0 {
		egress := s.policy(crossNamespaceEgressName(c))
		egress.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
		var (
			target string
			peer   *metav1.LabelSelector
			ports  []networkingv1.NetworkPolicyPort
		)
		flush := func() {
			if len(ports) == 0 {
				return
			}
			ns, comp, _ := strings.Cut(target, "/")
			egress.Spec.Egress = append(egress.Spec.Egress, networkingv1.NetworkPolicyEgressRule{
				To:    []networkingv1.NetworkPolicyPeer{namespacePeer(ns, comp, peer)},
				Ports: ports,
			})
			ports = nil
		}
		for _, d := range remote {
			if d.Target() != target {
				flush()
				target, peer = d.Target(), nil
			}
			var p Provider
			found := false
			if consent != nil {
				p, found = consent.Providers[d.Target()]
			}
			switch {
			case !found:
				warn(s.dependsOn, "%s: %q is one-sided and opens nothing: no %s in namespace %q declares component %q; the path opens when it does and exposes port %s to namespace %q with %s", s.dependsOnName, d.String(), s.declarer, d.Namespace, d.Component, d.PortString(), s.namespace, AnnotationExposeTo)
				continue
			case p.Closed != "":
				warn(s.dependsOn, "%s: %q opens nothing: %s", s.dependsOnName, d.String(), p.Closed)
				continue
			}
			agreed := AgreedPorts(s.namespace, s.namespaceLabels, d, p.Exposures)
			if len(agreed) == 0 {
				warn(s.dependsOn, "%s: %q is one-sided and opens nothing: %s in namespace %q does not expose port %s to namespace %q (%s)", s.dependsOnName, d.String(), p.Ref, d.Namespace, d.PortString(), s.namespace, p.exposeToName())
				continue
			}
			if len(agreed) != 1 || portString(agreed[0]) != d.PortString() {
				var got []string
				for _, a := range agreed {
					got = append(got, portString(a))
				}
				warn(s.dependsOn, "%s: %q opens only %s: %s in namespace %q exposes no more of it to namespace %q", s.dependsOnName, d.String(), strings.Join(got, ","), p.Ref, d.Namespace, s.namespace)
			}
			peer = p.Selector
			ports = append(ports, agreed...)
		}
		flush()
		if len(egress.Spec.Egress) > 0 {
			policies = append(policies, egress)
		}
	}
	if len(exposures) > 0 {
		ingress, w2 := providerIngress(s, exposures, consent)
		for _, msg := range w2 {
			warn(s.exposeTo, "%s", msg)
		}
		if ingress != nil {
			policies = append(policies, ingress)
		}
	}
	return policies, warnings
}

// exposeToName is how a message names the provider's consent: its
// annotation, or a LocalNetworkConfig's exposeTo.
func (p Provider) exposeToName() string {
	if strings.HasPrefix(p.Ref, KindLocalNetworkConfig+"/") {
		return "exposeTo"
	}
	return AnnotationExposeTo
}

// providerIngress is the ingress policy of the subject provider from the
// consumers that agree with its exposures, or nil.
func providerIngress(s consentSubject, exposures []Exposure, consent *Consent) (*networkingv1.NetworkPolicy, []string) {
	c := s.component
	var consumers []Consumer
	if consent != nil {
		for _, k := range consent.Consumers {
			if k.Namespace != s.namespace && k.Closed == "" {
				consumers = append(consumers, k)
			}
		}
	}
	sort.SliceStable(consumers, func(i, j int) bool {
		if consumers[i].Namespace != consumers[j].Namespace {
			return consumers[i].Namespace < consumers[j].Namespace
		}
		return consumers[i].Component < consumers[j].Component
	})
	var warnings []string
	in := s.policy(crossNamespaceIngressName(c))
	in.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	admitted := 0
	for i, k := range consumers {
		if i > 0 && k.Namespace == consumers[i-1].Namespace && k.Component == consumers[i-1].Component {
			continue // one owner per component; a second claimant gets nothing more
		}
		var deps []Dependency
		for _, d := range k.DependsOn {
			if d.Namespace == s.namespace && d.Component == c {
				deps = append(deps, agreedDependencies(k.Namespace, k.NamespaceLabels, d, exposures)...)
			}
		}
		if len(deps) == 0 {
			continue
		}
		if admitted == MaxConsumersPerComponent {
			warnings = append(warnings, fmt.Sprintf("%s: more than %d components of other namespaces depend on %q; the others are left out: narrow the namespace selector", s.exposeToName, MaxConsumersPerComponent, c))
			break
		}
		admitted++
		sort.Slice(deps, func(i, j int) bool { return deps[i].less(deps[j]) })
		in.Spec.Ingress = append(in.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{
			From:  []networkingv1.NetworkPolicyPeer{namespacePeer(k.Namespace, k.Component, k.Selector)},
			Ports: groupByComponent(compactDependencies(deps))[0].ports,
		})
	}
	if len(in.Spec.Ingress) == 0 {
		var sels []string
		for _, e := range exposures {
			sels = append(sels, e.String())
		}
		warnings = append(warnings, fmt.Sprintf("%s: %q is one-sided and opens nothing yet: no component of a matching namespace depends on %s/%s on an exposed port", s.exposeToName, strings.Join(sels, "; "), s.namespace, c))
		return nil, warnings
	}
	return in, warnings
}

// agreedDependencies is AgreedPorts as dependencies on one unnamed target,
// unsorted.
func agreedDependencies(consumerNamespace string, consumerLabels map[string]string, d Dependency, exposures []Exposure) []Dependency {
	set := namespaceLabelsOf(consumerNamespace, consumerLabels)
	var out []Dependency
	for _, e := range exposures {
		if e.NamespaceSelector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(e.NamespaceSelector)
		if err != nil || !sel.Matches(set) {
			continue
		}
		for _, p := range e.Ports {
			if a, ok := intersectPort(d, p); ok {
				a.Namespace, a.Component = "", "x"
				out = append(out, a)
			}
		}
	}
	return out
}

// ResolveConsent finds, for each workload of a set (the files of `netguard
// check`, the namespaces of an audit), what the other namespaces of the set
// declare towards it. levelOf gives a namespace's enforce level from its
// name and labels. The result has one entry per workload: nil for a workload
// with no cross-namespace declaration, or that does not own its component.
// Cost is linear in the set and its declarations.
func ResolveConsent(ws []Workload, cfg CrossNamespaceConfig, levelOf func(namespace string, labels map[string]string) Level) []*Consent {
	out, _ := ResolveConsentWithLocals(ws, nil, cfg, levelOf)
	return out
}

// consentParty is one claimant of a component in ResolveConsentWithLocals:
// an annotated workload, or a component of a LocalNetworkConfig.
type consentParty struct {
	claimant  Workload // for ComponentOwner and Ref
	labels    map[string]string
	component string
	remote    []Dependency
	exposes   []Exposure
	selector  *metav1.LabelSelector // nil: the netguard.io/component label
	ws, ls, c int                   // ws index, or ls index and component index; -1 when unused
}

// ResolveConsentWithLocals is ResolveConsent for a set that also holds
// LocalNetworkConfigs, whose components take part as consumers and
// providers like annotated workloads, and own their names by the same
// order (ComponentOwner). It returns the workloads' consents, as
// ResolveConsent does, and for each ls[i].Components[j] its consent in
// locals[i][j]. A LocalNetworkConfig that does not validate claims its
// components' names and declares nothing.
func ResolveConsentWithLocals(ws []Workload, ls []LocalConfig, cfg CrossNamespaceConfig, levelOf func(namespace string, labels map[string]string) Level) (workloads []*Consent, locals [][]*Consent) {
	var parties []consentParty
	for i, w := range ws {
		if _, ok := ClaimedComponent(w); !ok {
			continue
		}
		ann, _, errs := ParseAnnotations(w.Name, w.Annotations, field.NewPath("metadata"))
		if len(errs) > 0 {
			continue
		}
		_, remote := splitDependencies(w.Namespace, ann.DependsOn)
		parties = append(parties, consentParty{claimant: w, labels: w.NamespaceLabels, component: ann.Component, remote: remote, exposes: ann.ExposeTo, ws: i, ls: -1, c: -1})
	}
	locals = make([][]*Consent, len(ls))
	for i, l := range ls {
		locals[i] = make([]*Consent, len(l.Components))
		declared, _ := LocalConsentDeclarations(l)
		for j, c := range l.Components {
			if !isDNS1123Label(c.Name) {
				continue
			}
			p := consentParty{claimant: l.Claimant(c.Name), labels: l.NamespaceLabels, component: c.Name, ws: -1, ls: i, c: j}
			if d, ok := declared[c.Name]; ok {
				p.remote, p.exposes, p.selector = d.Remote, d.Exposures, d.Selector
			}
			parties = append(parties, p)
		}
	}
	claims := map[string][]int{} // NAMESPACE/COMPONENT -> parties
	for i, p := range parties {
		key := p.claimant.Namespace + "/" + p.component
		claims[key] = append(claims[key], i)
	}
	owners := make(map[string]int, len(claims))
	keys := make([]string, 0, len(claims))
	for key, idx := range claims {
		cands := make([]Workload, len(idx))
		for j, k := range idx {
			cands[j] = parties[k].claimant
		}
		owners[key] = idx[ComponentOwner(cands)]
		keys = append(keys, key)
	}
	sort.Strings(keys)
	closed := func(p consentParty) string {
		return cfg.Closed(p.claimant.Namespace, levelOf(p.claimant.Namespace, p.labels))
	}
	consumers := map[string][]Consumer{} // provider NAMESPACE/COMPONENT -> its consumers
	for _, key := range keys {
		p := parties[owners[key]]
		for j, d := range p.remote {
			if j > 0 && p.remote[j-1].Target() == d.Target() {
				continue
			}
			consumers[d.Target()] = append(consumers[d.Target()], Consumer{
				Namespace: p.claimant.Namespace, NamespaceLabels: p.labels, Component: p.component,
				Ref: p.claimant.Ref(), DependsOn: p.remote, Closed: closed(p), Selector: p.selector,
			})
		}
	}
	workloads = make([]*Consent, len(ws))
	for _, key := range keys {
		p := parties[owners[key]]
		if len(p.remote) == 0 && len(p.exposes) == 0 {
			continue
		}
		c := &Consent{Closed: closed(p), Providers: map[string]Provider{}}
		for _, d := range p.remote {
			if o, ok := owners[d.Target()]; ok {
				pp := parties[o]
				c.Providers[d.Target()] = Provider{Ref: pp.claimant.Ref(), Exposures: pp.exposes, Closed: closed(pp), Selector: pp.selector}
			}
		}
		if len(p.exposes) > 0 {
			c.Consumers = consumers[key]
		}
		if p.ws >= 0 {
			workloads[p.ws] = c
		} else {
			locals[p.ls][p.c] = c
		}
	}
	return workloads, locals
}
