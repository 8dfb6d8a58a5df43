package rules

// LocalNetworkConfig components. A LocalNetworkConfig (netguard.io/v1alpha1)
// declares components of its namespace that select their pods by a
// podSelector instead of the netguard.io/component label that injection
// patches into annotated workloads, so pods an operator creates can take
// part. Each component's dependencies generate the same policies as the
// annotations do, with the same names (the component owns them):
//
//	netguard.C.depends-on   egress of C's pods to every T it depends on
//	netguard.C.to.T         ingress to T's pods from C's pods
//	netguard.C.profile.P    P's ingress and egress rules for C's pods
//
// Selectors. A component declared by a LocalNetworkConfig is selected by its
// podSelector plus "netguard.io/component DoesNotExist": pods of annotated
// workloads carry that label and belong to their own component, so the two
// kinds of component can never select the same pod, and an annotated
// component's selector (netguard.io/component=X) needs no overlap check. A
// dependency on T resolves T's selector through a ComponentIndex of the
// namespace: T's effective podSelector when a LocalNetworkConfig owns T,
// netguard.io/component=T otherwise (an annotated workload, or nobody yet).
//
// Ownership is one owner per component per namespace, across annotated
// workloads and LocalNetworkConfigs, in the order of ComponentOwner: a
// LocalNetworkConfig's component claims like a workload of kind
// LocalNetworkConfig (Claimant).

import (
	"fmt"
	"sort"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// KindLocalNetworkConfig is the kind of a LocalNetworkConfig, in Refs and
// ownerReferences.
const KindLocalNetworkConfig = "LocalNetworkConfig"

// Limits of one LocalNetworkConfig. The CRD schema enforces the first two
// per component as well; these bound the whole object, which is what one
// admission request costs.
const (
	// MaxLocalComponents bounds spec.components.
	MaxLocalComponents = 64
	// MaxLocalDependencies bounds the dependsOn entries of all components.
	MaxLocalDependencies = 256
	// MaxLocalSelectorRequirements bounds matchLabels plus
	// matchExpressions of a podSelector.
	MaxLocalSelectorRequirements = 16
	// MaxLocalSelectorValues bounds the values of one expression.
	MaxLocalSelectorValues = 64
)

// LocalConfig is what the generator needs of a LocalNetworkConfig.
type LocalConfig struct {
	Namespace string
	Name      string
	UID       types.UID // when set, generated policies get an ownerReference
	// Created is the creationTimestamp, zero while it is being created.
	Created time.Time
	// NamespaceLabels decide which NetworkProfiles it may use; nil means
	// only kubernetes.io/metadata.name is known.
	NamespaceLabels map[string]string
	// Components, in any order.
	Components []LocalComponent
}

// LocalComponent is one entry of spec.components.
type LocalComponent struct {
	Name        string
	PodSelector *metav1.LabelSelector
	DependsOn   []LocalDependency
	// ExposeTo are spec.components[NAME].exposeTo.
	ExposeTo []LocalExposure
	// Consent is what other namespaces declare towards this component, as
	// the caller found it (see Workload.Consent); nil: nothing is known, so
	// each cross-namespace declaration is one-sided.
	Consent *Consent
}

// LocalExposure is one exposeTo entry: the component's Ports are offered to
// the components of the namespaces NamespaceSelector selects.
type LocalExposure struct {
	NamespaceSelector *metav1.LabelSelector
	Ports             []LocalExposedPort
}

// LocalExposedPort is one port, or range, of an exposeTo entry.
type LocalExposedPort struct {
	Port     intstr.IntOrString
	EndPort  *int32
	Protocol string
}

// LocalDependency is one dependsOn entry.
type LocalDependency struct {
	Component      string
	Namespace      string
	Port           *intstr.IntOrString
	Protocol       string
	NetworkProfile string
}

// Ref names the object for people: "LocalNetworkConfig/platform".
func (l LocalConfig) Ref() string { return KindLocalNetworkConfig + "/" + l.Name }

// Claimant is l's claim on component, as a Workload for ComponentOwner.
func (l LocalConfig) Claimant(component string) Workload {
	return Workload{Kind: KindLocalNetworkConfig, Namespace: l.Namespace, Name: l.Name, Created: l.Created,
		Annotations: map[string]string{AnnotationComponent: component}}
}

// ComponentNames returns the names of l's components, sorted.
func (l LocalConfig) ComponentNames() []string {
	out := make([]string, 0, len(l.Components))
	for _, c := range l.Components {
		out = append(out, c.Name)
	}
	sort.Strings(out)
	return out
}

// Without returns l without the named components.
func (l LocalConfig) Without(drop map[string]bool) LocalConfig {
	if len(drop) == 0 {
		return l
	}
	out := l
	out.Components = nil
	for _, c := range l.Components {
		if !drop[c.Name] {
			out.Components = append(out.Components, c)
		}
	}
	return out
}

// WithConsent returns l with a copy of its components, each component's
// Consent set to what consent returns for it (index and component); a nil
// Consent leaves the component's as it was. l's own components are left
// alone. The first error stops it and is returned with l unchanged.
func (l LocalConfig) WithConsent(consent func(i int, c LocalComponent) (*Consent, error)) (LocalConfig, error) {
	out := l
	out.Components = make([]LocalComponent, len(l.Components))
	copy(out.Components, l.Components)
	for i, c := range out.Components {
		got, err := consent(i, c)
		if err != nil {
			return l, err
		}
		if got != nil {
			out.Components[i].Consent = got
		}
	}
	return out, nil
}

func componentPath(name string) *field.Path {
	return field.NewPath("spec", "components").Key(name)
}

// LocalSelector is the selector generated policies use for a component
// whose podSelector is sel: sel, and no netguard.io/component label.
func LocalSelector(sel *metav1.LabelSelector) *metav1.LabelSelector {
	out := sel.DeepCopy()
	if out == nil {
		out = &metav1.LabelSelector{}
	}
	out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{Key: LabelComponent, Operator: metav1.LabelSelectorOpDoesNotExist})
	return out
}

// localComponent is a validated component.
type localComponent struct {
	name     string
	selector *metav1.LabelSelector // effective (LocalSelector)
	norm     NormalizedSelector    // of the effective selector
	deps     []Dependency          // sorted, deduplicated; cross-namespace ones have Namespace
	profiles []string              // sorted, deduplicated
	exposes  []Exposure
	consent  *Consent
}

// ValidateLocalConfig checks what l says on its own, without the cluster:
// names, selectors, dependencies, limits, and that its components do not
// overlap each other. It returns warnings (accepted, probably mistakes) and
// errors.
func ValidateLocalConfig(l LocalConfig) ([]string, field.ErrorList) {
	_, warnings, errs := validateLocal(l)
	return warnings, errs
}

// validateLocal is ValidateLocalConfig returning the components, sorted by
// name.
func validateLocal(l LocalConfig) ([]localComponent, []string, field.ErrorList) {
	var (
		errs     field.ErrorList
		warnings []string
		out      []localComponent
	)
	compsPath := field.NewPath("spec", "components")
	if len(l.Components) == 0 {
		return nil, nil, field.ErrorList{field.Required(compsPath, "declare at least one component")}
	}
	if len(l.Components) > MaxLocalComponents {
		return nil, nil, field.ErrorList{field.TooMany(compsPath, len(l.Components), MaxLocalComponents)}
	}
	total := 0
	for _, c := range l.Components {
		total += len(c.DependsOn)
	}
	if total > MaxLocalDependencies {
		return nil, nil, field.ErrorList{field.TooMany(compsPath, total, MaxLocalDependencies)}
	}
	comps := append([]LocalComponent(nil), l.Components...)
	sort.Slice(comps, func(i, j int) bool { return comps[i].Name < comps[j].Name })
	for _, c := range comps {
		p := componentPath(c.Name)
		if !isDNS1123Label(c.Name) {
			errs = append(errs, field.Invalid(p, shown(c.Name), "a component name "+componentHelp(c.Name)))
			continue
		}
		lc := localComponent{name: c.Name, consent: c.Consent}
		sel, serrs := validatePodSelector(c.PodSelector, p.Child("podSelector"))
		errs = append(errs, serrs...)
		if len(serrs) == 0 {
			lc.selector = LocalSelector(sel)
			lc.norm, _ = NormalizeSelector(lc.selector, nil)
		}
		seenDep := map[string]bool{}
		seenProfile := map[string]bool{}
		for i, d := range c.DependsOn {
			dp := p.Child("dependsOn").Index(i)
			switch {
			case (d.Component == "") == (d.NetworkProfile == ""):
				errs = append(errs, field.Invalid(dp, "", "set exactly one of component and networkProfile"))
			case d.NetworkProfile != "":
				if d.Port != nil || d.Protocol != "" {
					errs = append(errs, field.Invalid(dp, d.NetworkProfile, "a networkProfile entry takes no port or protocol: the profile says where its rules apply"))
					continue
				}
				if !isDNS1123Subdomain(d.NetworkProfile) {
					errs = append(errs, field.Invalid(dp.Child("networkProfile"), shown(d.NetworkProfile), profileHelp))
					continue
				}
				if seenProfile[d.NetworkProfile] {
					warnings = append(warnings, fmt.Sprintf("%s: NetworkProfile %q is listed twice", dp, d.NetworkProfile))
					continue
				}
				seenProfile[d.NetworkProfile] = true
				lc.profiles = append(lc.profiles, d.NetworkProfile)
			default:
				if d.Port == nil {
					errs = append(errs, field.Required(dp.Child("port"), "a component entry needs a port: a number, a range LOW-HIGH, or a port name"))
					continue
				}
				if strings.ContainsAny(d.Port.String(), ":/, \t\n") {
					errs = append(errs, field.Invalid(dp.Child("port"), shown(d.Port.String()), portHelp))
					continue
				}
				tok := d.Component + ":" + d.Port.String()
				if d.Namespace != "" {
					tok = d.Namespace + "/" + tok
				}
				if d.Protocol != "" {
					tok += "/" + d.Protocol
				}
				dep, msg := parseDependency(tok)
				if msg != "" {
					path := dp.Child("port")
					switch {
					case d.Namespace != "" && !isDNS1123Label(d.Namespace):
						path = dp.Child("namespace")
					case !isDNS1123Label(d.Component):
						path = dp.Child("component")
					case strings.HasPrefix(msg, "protocol"):
						path = dp.Child("protocol")
					}
					errs = append(errs, field.Invalid(path, shown(tok), msg))
					continue
				}
				if dep.Namespace == l.Namespace {
					dep.Namespace = "" // this namespace, said in full
				}
				if seenDep[dep.String()] {
					warnings = append(warnings, fmt.Sprintf("%s: %q is listed twice", dp, dep.String()))
					continue
				}
				seenDep[dep.String()] = true
				lc.deps = append(lc.deps, dep)
			}
		}
		sort.Slice(lc.deps, func(i, j int) bool { return lc.deps[i].less(lc.deps[j]) })
		if n := len(CrossNamespaceTargets(l.Namespace, lc.deps)); n > MaxCrossNamespaceTargets {
			errs = append(errs, field.TooMany(p.Child("dependsOn"), n, MaxCrossNamespaceTargets))
		}
		sort.Strings(lc.profiles)
		exposes, eerrs := validateLocalExposures(c.ExposeTo, p.Child("exposeTo"))
		errs = append(errs, eerrs...)
		lc.exposes = exposes
		out = append(out, lc)
	}
	if len(errs) > 0 {
		return nil, warnings, errs
	}
	// Components of one object must not overlap either: both would
	// generate paths for the same pods.
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if !out[i].norm.Disjoint(out[j].norm) {
				errs = append(errs, overlapError(out[j].name, out[j].norm, out[i].name, l.Ref()))
			}
		}
	}
	if len(errs) > 0 {
		return nil, warnings, errs
	}
	return out, warnings, nil
}

// validateLocalExposures converts a component's exposeTo entries, or says
// what is wrong with them. An entry must select namespaces by at least one
// label: an empty selector would offer the component to every namespace,
// which is said explicitly (kubernetes.io/metadata.name Exists) when meant.
func validateLocalExposures(in []LocalExposure, p *field.Path) ([]Exposure, field.ErrorList) {
	if len(in) > MaxExposuresPerComponent {
		return nil, field.ErrorList{field.TooMany(p, len(in), MaxExposuresPerComponent)}
	}
	var (
		out  []Exposure
		errs field.ErrorList
	)
	for i, e := range in {
		ep := p.Index(i)
		sp := ep.Child("namespaceSelector")
		sel := e.NamespaceSelector
		if sel == nil || len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
			errs = append(errs, field.Required(sp, "must select the consumer namespaces by at least one label, e.g. matchLabels: {kubernetes.io/metadata.name: kannika-data}; to offer the component to every namespace say so: matchExpressions: [{key: kubernetes.io/metadata.name, operator: Exists}]"))
			continue
		}
		if n := len(sel.MatchLabels) + len(sel.MatchExpressions); n > MaxRequirementsPerSelector {
			errs = append(errs, field.TooMany(sp, n, MaxRequirementsPerSelector))
			continue
		}
		if _, serrs := NormalizeSelector(sel, sp); len(serrs) > 0 {
			errs = append(errs, serrs...)
			continue
		}
		if len(e.Ports) == 0 {
			errs = append(errs, field.Required(ep.Child("ports"), "list at least one port offered"))
			continue
		}
		if len(e.Ports) > MaxPortsPerExposure {
			errs = append(errs, field.TooMany(ep.Child("ports"), len(e.Ports), MaxPortsPerExposure))
			continue
		}
		var deps []Dependency
		bad := false
		for j, port := range e.Ports {
			pp := ep.Child("ports").Index(j)
			tok := port.Port.String()
			if port.EndPort != nil {
				if port.Port.Type != intstr.Int {
					errs = append(errs, field.Invalid(pp.Child("endPort"), *port.EndPort, "needs a numeric port: a named port has no range"))
					bad = true
					continue
				}
				if *port.EndPort < port.Port.IntVal {
					errs = append(errs, field.Invalid(pp.Child("endPort"), *port.EndPort, fmt.Sprintf("must not be below port %d", port.Port.IntVal)))
					bad = true
					continue
				}
				if *port.EndPort > port.Port.IntVal {
					tok = fmt.Sprintf("%d-%d", port.Port.IntVal, *port.EndPort)
				}
			}
			if strings.ContainsAny(tok, ":/, \t\n") {
				errs = append(errs, field.Invalid(pp.Child("port"), shown(tok), portHelp))
				bad = true
				continue
			}
			if port.Protocol != "" {
				tok += "/" + port.Protocol
			}
			d, msg := parseDependency("x:" + tok)
			if msg != "" {
				path := pp.Child("port")
				if strings.HasPrefix(msg, "protocol") {
					path = pp.Child("protocol")
				}
				errs = append(errs, field.Invalid(path, shown(tok), msg))
				bad = true
				continue
			}
			deps = append(deps, d)
		}
		if bad {
			continue
		}
		sort.Slice(deps, func(i, j int) bool { return deps[i].less(deps[j]) })
		x := Exposure{NamespaceSelector: sel.DeepCopy()}
		for _, g := range groupByComponent(compactDependencies(deps)) {
			x.Ports = append(x.Ports, g.ports...)
		}
		out = append(out, x)
	}
	return out, errs
}

// validatePodSelector checks a component's podSelector: valid, not empty,
// within the limits, and not on the netguard.io/component label.
func validatePodSelector(sel *metav1.LabelSelector, p *field.Path) (*metav1.LabelSelector, field.ErrorList) {
	if sel == nil || len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		return nil, field.ErrorList{field.Required(p, "must select the component's pods by at least one label: an empty podSelector selects every pod of the namespace, which overlaps every other component")}
	}
	if n := len(sel.MatchLabels) + len(sel.MatchExpressions); n > MaxLocalSelectorRequirements {
		return nil, field.ErrorList{field.TooMany(p, n, MaxLocalSelectorRequirements)}
	}
	for i, e := range sel.MatchExpressions {
		if len(e.Values) > MaxLocalSelectorValues {
			return nil, field.ErrorList{field.TooMany(p.Child("matchExpressions").Index(i).Child("values"), len(e.Values), MaxLocalSelectorValues)}
		}
	}
	if _, errs := NormalizeSelector(sel, p); len(errs) > 0 {
		return nil, errs
	}
	if _, ok := sel.MatchLabels[LabelComponent]; ok {
		return nil, field.ErrorList{field.Invalid(p.Child("matchLabels").Key(LabelComponent), sel.MatchLabels[LabelComponent], "is the label netguard gives the pods of annotated workloads, which a LocalNetworkConfig never selects; select the pods by their own labels")}
	}
	for i, e := range sel.MatchExpressions {
		if e.Key == LabelComponent {
			return nil, field.ErrorList{field.Invalid(p.Child("matchExpressions").Index(i).Child("key"), e.Key, "is the label netguard gives the pods of annotated workloads, which a LocalNetworkConfig never selects; select the pods by their own labels")}
		}
	}
	return sel, nil
}

func overlapError(component string, sel NormalizedSelector, other, otherOwner string) *field.Error {
	return field.Invalid(componentPath(component).Child("podSelector"), sel.String(),
		fmt.Sprintf("overlaps the podSelector of component %q (%s): a pod both select would get both components' paths; make the selectors exclusive, e.g. by a label value only one of them matches", other, otherOwner))
}

// ComponentIndex maps the components of a namespace to the selector of
// their pods that generated policies use. Build it with CollectComponents.
type ComponentIndex map[string]*metav1.LabelSelector

// selector is the selector of component's pods: its entry, or the
// netguard.io/component label.
func (idx ComponentIndex) selector(component string) *metav1.LabelSelector {
	if s, ok := idx[component]; ok && s != nil {
		return s.DeepCopy()
	}
	return componentSelector(component)
}

// ForDependencies returns the entries of idx that differ from the
// netguard.io/component label (components LocalNetworkConfigs own) among
// deps' components, or nil when there are none: what Workload.Components
// needs for those dependencies.
func (idx ComponentIndex) ForDependencies(deps []Dependency) ComponentIndex {
	var out ComponentIndex
	for _, d := range deps {
		s, ok := idx[d.Component]
		if !ok || s == nil || isComponentLabel(s, d.Component) {
			continue
		}
		if out == nil {
			out = ComponentIndex{}
		}
		out[d.Component] = s
	}
	return out
}

func isComponentLabel(s *metav1.LabelSelector, component string) bool {
	return len(s.MatchExpressions) == 0 && len(s.MatchLabels) == 1 && s.MatchLabels[LabelComponent] == component
}

// NamespaceComponents are the component claims of one namespace, resolved.
type NamespaceComponents struct {
	// Index holds the selector of every owned component.
	Index ComponentIndex
	// Owners holds every component's owner.
	Owners map[string]Workload
	// local holds the normalized effective selectors of components owned
	// by LocalNetworkConfigs, for overlap checks.
	local map[string]NormalizedSelector
}

// CollectComponents resolves who owns each component of one namespace:
// the annotated workloads ws (others are ignored) and LocalNetworkConfigs
// ls, by the order of ComponentOwner. Components of a LocalNetworkConfig
// that does not validate still claim their names.
func CollectComponents(ws []Workload, ls []LocalConfig) NamespaceComponents {
	claims := map[string][]Workload{}
	selectors := map[string]*metav1.LabelSelector{} // "ref component" -> raw podSelector
	for _, w := range ws {
		if c, ok := ClaimedComponent(w); ok {
			claims[c] = append(claims[c], w)
		}
	}
	for _, l := range ls {
		for _, c := range l.Components {
			if !isDNS1123Label(c.Name) {
				continue
			}
			claims[c.Name] = append(claims[c.Name], l.Claimant(c.Name))
			selectors[l.Ref()+" "+c.Name] = c.PodSelector
		}
	}
	nc := NamespaceComponents{Index: ComponentIndex{}, Owners: map[string]Workload{}, local: map[string]NormalizedSelector{}}
	for c, cl := range claims {
		owner := cl[ComponentOwner(cl)]
		nc.Owners[c] = owner
		if owner.Kind != KindLocalNetworkConfig {
			nc.Index[c] = componentSelector(c)
			continue
		}
		sel := selectors[owner.Ref()+" "+c]
		if _, errs := validatePodSelector(sel, field.NewPath("podSelector")); len(errs) > 0 {
			continue // its owner's finding; a dependency on it selects nothing
		}
		eff := LocalSelector(sel)
		nc.Index[c] = eff
		nc.local[c], _ = NormalizeSelector(eff, nil)
	}
	return nc
}

// LocalClaimErrors reports the components of l that another claimant of
// the namespace owns (Duplicate), and those whose selector overlaps a
// component another LocalNetworkConfig owns (Invalid). The cost is linear
// in l's components times the namespace's LocalNetworkConfig components.
func LocalClaimErrors(l LocalConfig, nc NamespaceComponents) field.ErrorList {
	var errs field.ErrorList
	comps := append([]LocalComponent(nil), l.Components...)
	sort.Slice(comps, func(i, j int) bool { return comps[i].Name < comps[j].Name })
	others := make([]string, 0, len(nc.local))
	for c := range nc.local {
		if o := nc.Owners[c]; o.Kind != KindLocalNetworkConfig || o.Name != l.Name {
			others = append(others, c)
		}
	}
	sort.Strings(others)
	for _, c := range comps {
		if o, ok := nc.Owners[c.Name]; ok && (o.Kind != KindLocalNetworkConfig || o.Name != l.Name) {
			errs = append(errs, LocalDuplicateComponent(l, c.Name, o))
			continue
		}
		sel, serrs := validatePodSelector(c.PodSelector, field.NewPath("podSelector"))
		if len(serrs) > 0 {
			continue
		}
		mine, _ := NormalizeSelector(LocalSelector(sel), nil)
		for _, o := range others {
			if !mine.Disjoint(nc.local[o]) {
				errs = append(errs, overlapError(c.Name, mine, o, nc.Owners[o].Ref()))
			}
		}
	}
	return errs
}

// LocalDuplicateComponent is the error for l's component that owner owns.
func LocalDuplicateComponent(l LocalConfig, component string, owner Workload) *field.Error {
	err := field.Duplicate(componentPath(component), component)
	err.Detail = fmt.Sprintf("component %q is already declared by %s in namespace %q; give each component its own name", component, owner.Ref(), l.Namespace)
	return err
}

// LocalGenerated is the generator's result for one LocalNetworkConfig.
type LocalGenerated struct {
	// Policies are sorted by name.
	Policies []*networkingv1.NetworkPolicy
	// Digest is Digest(Policies).
	Digest   string
	Warnings []string
	// OneSided are the cross-namespace declarations that open nothing, as
	// audit findings; their messages are in Warnings too.
	OneSided []Violation
}

// localSubject is the consent subject for component c of l.
func localSubject(l LocalConfig, c localComponent) consentSubject {
	p := componentPath(c.name)
	return consentSubject{
		namespace: l.Namespace, namespaceLabels: l.NamespaceLabels, component: c.name,
		policy:    func(name string) *networkingv1.NetworkPolicy { return newLocalPolicy(l, c.name, name, c.selector) },
		dependsOn: p.Child("dependsOn").String(), exposeTo: p.Child("exposeTo").String(),
		dependsOnName: p.Child("dependsOn").String(), exposeToName: p.Child("exposeTo").String(),
		declarer: "workload or LocalNetworkConfig",
	}
}

// GenerateLocal returns the NetworkPolicies l's components declare.
// profiles maps NetworkProfile names to profiles; index resolves the
// selectors of the components l depends on (nil: only l's own components
// are known, others are taken for annotated components). On error no
// policies are returned. l should hold only the components it owns (see
// LocalConfig.Without).
func GenerateLocal(l LocalConfig, profiles map[string]Profile, index ComponentIndex) (LocalGenerated, field.ErrorList) {
	comps, warnings, errs := validateLocal(l)
	out := LocalGenerated{Warnings: warnings}
	if len(errs) > 0 {
		return out, errs
	}
	own := map[string]*metav1.LabelSelector{}
	for _, c := range comps {
		own[c.name] = c.selector
	}
	resolve := func(t string) (*metav1.LabelSelector, bool) {
		if s, ok := index[t]; ok {
			return s.DeepCopy(), true
		}
		if s, ok := own[t]; ok {
			return s.DeepCopy(), true
		}
		return componentSelector(t), false
	}
	scope := Workload{Kind: KindLocalNetworkConfig, Namespace: l.Namespace, Name: l.Name, NamespaceLabels: l.NamespaceLabels}
	var policies []*networkingv1.NetworkPolicy
	for _, c := range comps {
		p := componentPath(c.name).Child("dependsOn")
		used := make([]Profile, 0, len(c.profiles))
		for _, name := range c.profiles {
			pr, ok := profiles[name]
			if !ok {
				errs = append(errs, MissingProfile(p, name))
				continue
			}
			if err := profileScopeError(pr, scope, p); err != nil {
				errs = append(errs, err)
				continue
			}
			if len(pr.Ingress) == 0 && len(pr.Egress) == 0 {
				out.Warnings = append(out.Warnings, fmt.Sprintf("%s: NetworkProfile %q has no rules", p, name))
				continue
			}
			used = append(used, pr)
		}
		local, remote := splitDependencies(l.Namespace, c.deps)
		cross, oneSided := consentPolicies(localSubject(l, c), remote, c.exposes, c.consent)
		policies = append(policies, cross...)
		out.OneSided = append(out.OneSided, oneSided...)
		for _, v := range oneSided {
			out.Warnings = append(out.Warnings, v.Message)
		}
		if len(local) > 0 {
			eg := newLocalPolicy(l, c.name, "netguard."+c.name+".depends-on", c.selector)
			eg.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
			for _, g := range groupByComponent(local) {
				target, known := resolve(g.component)
				if !known {
					out.Warnings = append(out.Warnings, fmt.Sprintf("%s: component %q is not declared in namespace %q: its policies select pods labelled %s=%s, which none may carry yet; declare it in a LocalNetworkConfig or annotate its workload", p, g.component, l.Namespace, LabelComponent, g.component))
				}
				eg.Spec.Egress = append(eg.Spec.Egress, networkingv1.NetworkPolicyEgressRule{
					To:    []networkingv1.NetworkPolicyPeer{{PodSelector: target.DeepCopy()}},
					Ports: g.ports,
				})
				in := newLocalPolicy(l, c.name, "netguard."+c.name+".to."+g.component, target)
				in.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
				in.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{PodSelector: c.selector.DeepCopy()}},
					Ports: clonePorts(g.ports),
				}}
				policies = append(policies, in)
			}
			policies = append(policies, eg)
		}
		for _, pr := range used {
			pol := newLocalPolicy(l, c.name, "netguard."+c.name+".profile."+pr.Name, c.selector)
			if len(pr.Ingress) > 0 {
				pol.Spec.PolicyTypes = append(pol.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
				for i := range pr.Ingress {
					pol.Spec.Ingress = append(pol.Spec.Ingress, *pr.Ingress[i].DeepCopy())
				}
			}
			if len(pr.Egress) > 0 {
				pol.Spec.PolicyTypes = append(pol.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
				for i := range pr.Egress {
					pol.Spec.Egress = append(pol.Spec.Egress, *pr.Egress[i].DeepCopy())
				}
			}
			policies = append(policies, pol)
		}
	}
	if len(errs) > 0 {
		return LocalGenerated{Warnings: out.Warnings, OneSided: out.OneSided}, errs
	}
	sort.Slice(policies, func(i, j int) bool { return policies[i].Name < policies[j].Name })
	out.Policies = policies
	out.Digest = Digest(policies)
	return out, nil
}

// newLocalPolicy starts a policy of l's component owner selecting sel.
func newLocalPolicy(l LocalConfig, owner, name string, sel *metav1.LabelSelector) *networkingv1.NetworkPolicy {
	p := &networkingv1.NetworkPolicy{
		TypeMeta: metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        policyName(name),
			Namespace:   l.Namespace,
			Labels:      map[string]string{LabelManagedBy: ManagedByValue, LabelComponent: owner},
			Annotations: map[string]string{AnnotationWorkload: l.Ref()},
		},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: *sel.DeepCopy()},
	}
	if l.UID != "" {
		no := false
		p.OwnerReferences = []metav1.OwnerReference{{
			APIVersion:         "netguard.io/v1alpha1",
			Kind:               KindLocalNetworkConfig,
			Name:               l.Name,
			UID:                l.UID,
			Controller:         &no,
			BlockOwnerDeletion: &no,
		}}
	}
	return p
}

// LocalGeneratedViolations judges the dependency policies of gen (not the
// profiles', which their scope governs) at level and version, as
// GeneratedViolations does for annotations. Each violation names the
// component whose dependsOn caused it.
func LocalGeneratedViolations(gen LocalGenerated, level Level, version Version) []Violation {
	if level.Rank() > LevelRestricted.Rank() || !level.Valid() {
		level = LevelRestricted
	}
	if level == LevelPrivileged {
		return nil
	}
	var out []Violation
	for _, p := range gen.Policies {
		if strings.Contains(p.Name, ".profile.") {
			continue
		}
		path := componentPath(p.Labels[LabelComponent]).Child("dependsOn").String()
		if p.Name == crossNamespaceIngressName(p.Labels[LabelComponent]) {
			path = componentPath(p.Labels[LabelComponent]).Child("exposeTo").String()
		}
		for _, v := range policyViolations(p, p.Labels[LabelComponent], level, version) {
			out = append(out, Violation{Rule: v.Rule, Field: path, Message: describePolicyViolation(p.Name, v)})
		}
	}
	return out
}

// LocalConsent is what one component of a LocalNetworkConfig declares
// across namespaces.
type LocalConsent struct {
	// Remote are its dependencies on other namespaces.
	Remote    []Dependency
	Exposures []Exposure
	// Selector is the effective selector of its pods.
	Selector *metav1.LabelSelector
}

// LocalConsentDeclarations returns what each component of l declares across
// namespaces, by component name, validating l once. ok is false when l does
// not validate: it then declares nothing.
func LocalConsentDeclarations(l LocalConfig) (map[string]LocalConsent, bool) {
	comps, _, errs := validateLocal(l)
	if len(errs) > 0 {
		return nil, false
	}
	out := make(map[string]LocalConsent, len(comps))
	for _, c := range comps {
		out[c.name] = LocalConsent{Remote: RemoteDependencies(l.Namespace, c.deps), Exposures: c.exposes, Selector: c.selector}
	}
	return out, true
}
