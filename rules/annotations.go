package rules

// The workload annotations that declare a component's network needs. They are
// read on apps/v1 Deployments, StatefulSets and DaemonSets:
//
//	netguard.io/component:  NAME                       (DNS-1123 label; defaults to the workload's name)
//	netguard.io/depends-on: [NAMESPACE/]COMPONENT:PORT[/PROTOCOL] ... (commas or white space between entries)
//	netguard.io/profiles:   PROFILE ...                 (NetworkProfile names)
//	netguard.io/expose-to:  NAMESPACE-SELECTOR:PORT[/PROTOCOL][,PORT...] ; ... (see consent.go)
//
// The grammar and every error message are documented in docs/annotations.md;
// keep the two in step.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const (
	// AnnotationComponent names the component a workload's pods belong to.
	AnnotationComponent = "netguard.io/component"
	// AnnotationDependsOn lists the components (and ports) a component connects to.
	AnnotationDependsOn = "netguard.io/depends-on"
	// AnnotationProfiles lists the NetworkProfiles whose rules apply to a component.
	AnnotationProfiles = "netguard.io/profiles"

	// LabelComponent is the pod label generated selectors match on. The
	// webhook patches it into the pod template of an annotated workload.
	LabelComponent = "netguard.io/component"
	// LabelManagedBy marks the NetworkPolicies netguard generates.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is LabelManagedBy's value on generated policies.
	ManagedByValue = "netguard"
	// AnnotationWorkload on a generated policy names the workload that owns
	// it, as KIND/NAME (a label value cannot hold the slash).
	AnnotationWorkload = "netguard.io/workload"

	// DefaultDenyPolicyName is the per-namespace policy that denies all
	// ingress and egress of every pod.
	DefaultDenyPolicyName = "netguard-default-deny"
	// AllowDNSPolicyName is the per-namespace policy that lets every pod
	// reach the cluster DNS.
	AllowDNSPolicyName = "netguard-allow-dns"
)

// Limits that keep a hostile or mistaken annotation from costing more than it
// could ever be worth. A real depends-on list is a few lines long.
const (
	maxAnnotationValueLength = 16 * 1024
	maxDependsOnEntries      = 256
	maxProfileEntries        = 64
	// maxShownToken bounds how much of an offending token an error message
	// repeats.
	maxShownToken = 80
)

// IsAnnotated reports whether the annotations ask netguard to generate
// NetworkPolicies, i.e. whether any of the netguard.io workload annotations is
// present (even empty).
func IsAnnotated(annotations map[string]string) bool {
	for _, k := range []string{AnnotationComponent, AnnotationDependsOn, AnnotationProfiles, AnnotationExposeTo} {
		if _, ok := annotations[k]; ok {
			return true
		}
	}
	return false
}

// Dependency is one parsed netguard.io/depends-on entry: this component's pods
// connect to Component's pods on Port, in the dependent's own namespace or,
// with Namespace set, in another namespace whose Component consents
// (consent.go).
type Dependency struct {
	// Namespace is the provider's namespace; "" means the dependent's own
	// namespace.
	Namespace string
	Component string
	// Port is a number or a port name (resolved at the destination pods'
	// container ports, as NetworkPolicy does).
	Port intstr.IntOrString
	// EndPort is the last port of a range LOW-HIGH, 0 for a single port.
	EndPort int32
	// Protocol is TCP, UDP or SCTP.
	Protocol corev1.Protocol
}

// PortString renders the port part in the annotation's canonical form:
// "8080", "http", "10000-30000", with "/UDP" or "/SCTP" appended when the
// protocol is not TCP.
func (d Dependency) PortString() string {
	s := d.Port.String()
	if d.EndPort != 0 {
		s += "-" + strconv.Itoa(int(d.EndPort))
	}
	if d.Protocol != corev1.ProtocolTCP {
		s += "/" + string(d.Protocol)
	}
	return s
}

// String renders the entry in canonical form, e.g. "db:5432", "dns:53/UDP"
// or "kannika-system/event-gateway:8082".
func (d Dependency) String() string {
	if d.Namespace != "" {
		return d.Namespace + "/" + d.Component + ":" + d.PortString()
	}
	return d.Component + ":" + d.PortString()
}

// Target is the provider as "COMPONENT" or "NAMESPACE/COMPONENT".
func (d Dependency) Target() string {
	if d.Namespace != "" {
		return d.Namespace + "/" + d.Component
	}
	return d.Component
}

// less orders dependencies by namespace (own first), component, then
// protocol, then port, so that generated policies do not depend on the order
// of the annotation.
func (d Dependency) less(o Dependency) bool {
	if d.Namespace != o.Namespace {
		return d.Namespace < o.Namespace
	}
	if d.Component != o.Component {
		return d.Component < o.Component
	}
	return portLess(d.Protocol, d.Port, d.EndPort, o.Protocol, o.Port, o.EndPort)
}

func portLess(ap corev1.Protocol, a intstr.IntOrString, aEnd int32, bp corev1.Protocol, b intstr.IntOrString, bEnd int32) bool {
	if ap != bp {
		return ap < bp
	}
	if a.Type != b.Type {
		return a.Type == intstr.Int // numbers before names
	}
	if a.Type == intstr.Int {
		if a.IntVal != b.IntVal {
			return a.IntVal < b.IntVal
		}
		return aEnd < bEnd
	}
	return a.StrVal < b.StrVal
}

// Annotations is the parsed form of a workload's netguard.io annotations.
type Annotations struct {
	// Component is the value of netguard.io/component, or the workload's
	// name when the annotation is absent.
	Component string
	// DependsOn is deduplicated and sorted.
	DependsOn []Dependency
	// Profiles is deduplicated and sorted.
	Profiles []string
	// ExposeTo is the parsed netguard.io/expose-to: the namespaces whose
	// components may depend on this one, and on which ports.
	ExposeTo []Exposure
}

// ParseAnnotations reads the netguard.io annotations of the workload called
// workloadName. fldPath is the path of the workload's metadata (usually
// field.NewPath("metadata")); errors point below it, e.g.
// metadata.annotations[netguard.io/depends-on]. Warnings are for things that
// are accepted but probably not meant, such as duplicate entries.
func ParseAnnotations(workloadName string, annotations map[string]string, fldPath *field.Path) (Annotations, []string, field.ErrorList) {
	var (
		out      Annotations
		warnings []string
		errs     field.ErrorList
	)
	annPath := fldPath.Child("annotations")
	if v, ok := annotations[AnnotationComponent]; ok {
		c, e := ParseComponent(v, annPath.Key(AnnotationComponent))
		out.Component = c
		errs = append(errs, e...)
	} else {
		// Workload names are DNS-1123 subdomains; a component (a label
		// value) must be a DNS-1123 label, so not every name will do.
		if !isDNS1123Label(workloadName) {
			errs = append(errs, field.Invalid(fldPath.Child("name"), shown(workloadName),
				fmt.Sprintf("cannot be the component name: it %s; set the %s annotation", componentHelp(workloadName), AnnotationComponent)))
		} else {
			out.Component = workloadName
		}
	}
	if v, ok := annotations[AnnotationDependsOn]; ok {
		deps, w, e := ParseDependsOn(v, annPath.Key(AnnotationDependsOn))
		out.DependsOn = deps
		warnings = append(warnings, w...)
		errs = append(errs, e...)
	}
	if v, ok := annotations[AnnotationProfiles]; ok {
		names, w, e := ParseProfiles(v, annPath.Key(AnnotationProfiles))
		out.Profiles = names
		warnings = append(warnings, w...)
		errs = append(errs, e...)
	}
	if v, ok := annotations[AnnotationExposeTo]; ok {
		exp, w, e := ParseExposeTo(v, annPath.Key(AnnotationExposeTo))
		out.ExposeTo = exp
		warnings = append(warnings, w...)
		errs = append(errs, e...)
	}
	return out, warnings, errs
}

// ParseComponent validates a netguard.io/component value: a DNS-1123 label,
// because it becomes the value of the pods' netguard.io/component label.
func ParseComponent(value string, fldPath *field.Path) (string, field.ErrorList) {
	v := strings.TrimSpace(value)
	if v == "" {
		return "", field.ErrorList{field.Required(fldPath, "must name the component (a DNS-1123 label); remove the annotation to use the workload's name")}
	}
	if msg := badCharacters(value); msg != "" {
		return "", field.ErrorList{field.Invalid(fldPath, shown(value), msg)}
	}
	if !isDNS1123Label(v) {
		return "", field.ErrorList{field.Invalid(fldPath, shown(v), componentHelp(v))}
	}
	return v, nil
}

// ParseDependsOn parses a netguard.io/depends-on value. Entries are separated
// by commas or white space (newlines included) and have the form
// [NAMESPACE/]COMPONENT:PORT[/PROTOCOL]:
//
//	backend:8080
//	kannika-system/event-gateway:8082   a component of another namespace, by consent
//	dns:53/udp              protocol is case-insensitive; TCP is the default
//	backend:http            a named container port of backend's pods
//	instance-manager:10000-30000
//
// The result is deduplicated and sorted; each duplicate adds a warning. Every
// error names the offending entry and says what is allowed.
func ParseDependsOn(value string, fldPath *field.Path) ([]Dependency, []string, field.ErrorList) {
	tokens, errs := splitList(value, fldPath, maxDependsOnEntries, "entries")
	if len(errs) > 0 {
		return nil, nil, errs
	}
	var (
		deps     []Dependency
		warnings []string
		seen     = map[string]bool{}
		remote   = map[string]bool{}
	)
	for _, tok := range tokens {
		d, err := parseDependency(tok)
		if err != "" {
			errs = append(errs, field.Invalid(fldPath, shown(tok), err))
			continue
		}
		if d.Namespace != "" && !remote[d.Target()] {
			remote[d.Target()] = true
			if len(remote) > MaxCrossNamespaceTargets {
				errs = append(errs, field.Invalid(fldPath, shown(tok), fmt.Sprintf("names more than %d components of other namespaces; netguard resolves at most %d per workload: split the workload or ask the platform for a NetworkProfile", MaxCrossNamespaceTargets, MaxCrossNamespaceTargets)))
				break
			}
		}
		key := d.String()
		if seen[key] {
			warnings = append(warnings, fmt.Sprintf("%s: %q is listed more than once", AnnotationDependsOn, key))
			continue
		}
		seen[key] = true
		deps = append(deps, d)
	}
	if len(errs) > 0 {
		return nil, warnings, errs
	}
	sort.Slice(deps, func(i, j int) bool { return deps[i].less(deps[j]) })
	return deps, warnings, nil
}

// ParseProfiles parses a netguard.io/profiles value: NetworkProfile names
// (DNS-1123 subdomains, as for any cluster-scoped object) separated by commas
// or white space. The result is deduplicated and sorted. Whether each profile
// exists is for the caller to check.
func ParseProfiles(value string, fldPath *field.Path) ([]string, []string, field.ErrorList) {
	tokens, errs := splitList(value, fldPath, maxProfileEntries, "profiles")
	if len(errs) > 0 {
		return nil, nil, errs
	}
	var (
		names    []string
		warnings []string
		seen     = map[string]bool{}
	)
	for _, tok := range tokens {
		if !isDNS1123Subdomain(tok) {
			errs = append(errs, field.Invalid(fldPath, shown(tok), profileHelp))
			continue
		}
		if seen[tok] {
			warnings = append(warnings, fmt.Sprintf("%s: %q is listed more than once", AnnotationProfiles, tok))
			continue
		}
		seen[tok] = true
		names = append(names, tok)
	}
	if len(errs) > 0 {
		return nil, warnings, errs
	}
	sort.Strings(names)
	return names, warnings, nil
}

// splitList checks a list annotation as a whole (length, encoding, control
// characters) and splits it at commas and white space.
func splitList(value string, fldPath *field.Path, maxEntries int, what string) ([]string, field.ErrorList) {
	if len(value) > maxAnnotationValueLength {
		return nil, field.ErrorList{field.TooLong(fldPath, "", maxAnnotationValueLength)}
	}
	if msg := badCharacters(value); msg != "" {
		return nil, field.ErrorList{field.Invalid(fldPath, shown(value), msg)}
	}
	tokens := strings.FieldsFunc(value, func(r rune) bool {
		return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	if len(tokens) > maxEntries {
		return nil, field.ErrorList{field.TooMany(fldPath, len(tokens), maxEntries)}
	}
	return tokens, nil
}

// badCharacters explains why value cannot be part of an annotation list, or
// returns "". Tabs and line breaks are separators; other control characters
// are almost always a copy-and-paste accident and would be invisible in an
// error message, so they are rejected with their position.
func badCharacters(value string) string {
	if !utf8.ValidString(value) {
		return "must be valid UTF-8"
	}
	for i, r := range value {
		if r == '\t' || r == '\n' || r == '\r' {
			continue
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Sprintf("control character %U at byte %d is not allowed; separate entries with commas, spaces or newlines", r, i)
		}
	}
	return ""
}

// parseDependency parses one COMPONENT:PORT[/PROTOCOL] entry and returns a
// message saying what is wrong with it, or "".
func parseDependency(tok string) (Dependency, string) {
	// The form names the cross-namespace variant only where it was meant,
	// so that the common message stays short.
	const form = "must be COMPONENT:PORT[/PROTOCOL], e.g. backend:8080 or dns:53/UDP"
	const qualifiedForm = "must be NAMESPACE/COMPONENT:PORT[/PROTOCOL], e.g. kannika-system/event-gateway:8082"
	comp, rest, ok := strings.Cut(tok, ":")
	if !ok {
		if strings.Contains(tok, "/") {
			return Dependency{}, qualifiedForm
		}
		return Dependency{}, form
	}
	ns, c, qualified := strings.Cut(comp, "/")
	if qualified {
		if ns == "" {
			return Dependency{}, "namespace is missing before \"/\"; " + qualifiedForm
		}
		if !isDNS1123Label(ns) {
			return Dependency{}, fmt.Sprintf("namespace %q must be a namespace name: %s", shown(ns), componentHelp(ns)[len("must be "):])
		}
		comp = c
	} else {
		ns = ""
	}
	if comp == "" {
		return Dependency{}, "component name is missing; " + form
	}
	if !isDNS1123Label(comp) {
		return Dependency{}, fmt.Sprintf("component %q %s", shown(comp), componentHelp(comp))
	}
	port, proto, hasProto := strings.Cut(rest, "/")
	d := Dependency{Namespace: ns, Component: comp, Protocol: corev1.ProtocolTCP}
	if hasProto {
		switch strings.ToUpper(proto) {
		case "TCP":
			d.Protocol = corev1.ProtocolTCP
		case "UDP":
			d.Protocol = corev1.ProtocolUDP
		case "SCTP":
			d.Protocol = corev1.ProtocolSCTP
		case "":
			return Dependency{}, "protocol is missing after \"/\"; must be TCP, UDP or SCTP"
		default:
			return Dependency{}, fmt.Sprintf("protocol %q must be TCP, UDP or SCTP", shown(proto))
		}
	}
	if port == "" {
		return Dependency{}, "port is missing; " + form
	}
	// A leading digit means a number or a range. Kubernetes would accept a
	// port name such as "80a", but here it is far more likely a typo of a
	// number, so names must start with a letter.
	if c := port[0]; c >= '0' && c <= '9' {
		lo, hi, isRange := strings.Cut(port, "-")
		l, ok := portNumber(lo)
		if !ok {
			return Dependency{}, portHelp
		}
		d.Port = intstr.FromInt32(l)
		if !isRange {
			return d, ""
		}
		h, ok := portNumber(hi)
		if !ok {
			return Dependency{}, fmt.Sprintf("port range %q must be LOW-HIGH with both ends 1-65535", shown(port))
		}
		if h < l {
			return Dependency{}, fmt.Sprintf("port range %q ends before it starts; write LOW-HIGH", shown(port))
		}
		if h > l {
			d.EndPort = h
		}
		return d, ""
	}
	if msgs := validation.IsValidPortName(port); len(msgs) > 0 {
		return Dependency{}, portHelp
	}
	d.Port = intstr.FromString(port)
	return d, ""
}

const profileHelp = "must be a NetworkProfile name: up to 253 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"

const portHelp = "port must be 1-65535, a range LOW-HIGH, or a port name (up to 15 lowercase letters, digits and '-', starting with a letter)"

// portNumber parses a decimal port number 1-65535 (no sign, no leading "+").
func portNumber(s string) (int32, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, false
	}
	return int32(n), true
}

// componentHelp says what a component name may be. The messages of
// validation.IsDNS1123Label are long and print a regular expression; this one
// says the same in words.
func componentHelp(name string) string {
	if len(name) > validation.DNS1123LabelMaxLength {
		return fmt.Sprintf("must be at most %d characters", validation.DNS1123LabelMaxLength)
	}
	return "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit"
}

// shown shortens a token for an error message.
func shown(s string) string {
	if len(s) <= maxShownToken {
		return s
	}
	cut := maxShownToken
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
