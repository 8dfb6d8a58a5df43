package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PortRange is an inclusive range of port numbers within 1-65535.
type PortRange struct {
	From, To int32
}

func (r PortRange) String() string {
	if r.From == r.To {
		return strconv.Itoa(int(r.From))
	}
	return fmt.Sprintf("%d-%d", r.From, r.To)
}

const maxPort = 65535

// ProtocolPorts is what a rule opens for one protocol: numbered ports as
// sorted, merged ranges, and named ports, which each selected pod resolves to
// the container port it declares under that name.
type ProtocolPorts struct {
	Ranges []PortRange
	Names  []string
}

// All reports whether every port number is open.
func (p ProtocolPorts) All() bool {
	return len(p.Ranges) == 1 && p.Ranges[0] == PortRange{1, maxPort}
}

// IsEmpty reports whether no port is open.
func (p ProtocolPorts) IsEmpty() bool { return len(p.Ranges) == 0 && len(p.Names) == 0 }

// Count is the number of open port numbers; named ports are not counted.
func (p ProtocolPorts) Count() int {
	n := 0
	for _, r := range p.Ranges {
		n += int(r.To-r.From) + 1
	}
	return n
}

// Union returns the ports open in p or o.
func (p ProtocolPorts) Union(o ProtocolPorts) ProtocolPorts { return unionProtocolPorts(p, o) }

func unionProtocolPorts(ps ...ProtocolPorts) ProtocolPorts {
	var (
		ranges []PortRange
		names  []string
	)
	for _, p := range ps {
		ranges = append(ranges, p.Ranges...)
		names = append(names, p.Names...)
	}
	out := ProtocolPorts{Ranges: mergePortRanges(ranges)}
	if len(names) > 0 {
		slices.Sort(names)
		out.Names = slices.Compact(names)
	}
	return out
}

// String lists ranges then names: "80, 8000-8080, metrics"; "all" when every
// number is open.
func (p ProtocolPorts) String() string {
	var parts []string
	if p.All() {
		parts = append(parts, "all")
	} else {
		for _, r := range p.Ranges {
			parts = append(parts, r.String())
		}
	}
	parts = append(parts, p.Names...)
	return strings.Join(parts, ", ")
}

func mergePortRanges(rs []PortRange) []PortRange {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b PortRange) int { return int(a.From) - int(b.From) })
	out := []PortRange{rs[0]}
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if int(r.From) <= int(last.To)+1 {
			last.To = max(last.To, r.To)
			continue
		}
		out = append(out, r)
	}
	return out
}

// portProtocols are the protocols a NetworkPolicy port can name, in the order
// PortSet reports them.
var portProtocols = []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}

// PortSet is what a rule, or several, opens per protocol.
type PortSet struct {
	TCP, UDP, SCTP ProtocolPorts
}

// AllPortsSet opens every port of every protocol: a rule without ports.
func AllPortsSet() PortSet {
	all := ProtocolPorts{Ranges: []PortRange{{1, maxPort}}}
	return PortSet{TCP: all, UDP: all, SCTP: all}
}

// Protocol returns the ports of one protocol; nothing for an unknown one.
func (s PortSet) Protocol(p corev1.Protocol) ProtocolPorts {
	switch p {
	case corev1.ProtocolTCP:
		return s.TCP
	case corev1.ProtocolUDP:
		return s.UDP
	case corev1.ProtocolSCTP:
		return s.SCTP
	}
	return ProtocolPorts{}
}

func (s *PortSet) protocol(p corev1.Protocol) *ProtocolPorts {
	switch p {
	case corev1.ProtocolUDP:
		return &s.UDP
	case corev1.ProtocolSCTP:
		return &s.SCTP
	}
	return &s.TCP
}

// Union returns the ports open in s or o.
func (s PortSet) Union(o PortSet) PortSet { return UnionPortSets(s, o) }

// UnionPortSets returns the ports open in any of the sets, merging once
// rather than pairwise.
func UnionPortSets(sets ...PortSet) PortSet {
	tcp, udp, sctp := make([]ProtocolPorts, len(sets)), make([]ProtocolPorts, len(sets)), make([]ProtocolPorts, len(sets))
	for i, s := range sets {
		tcp[i], udp[i], sctp[i] = s.TCP, s.UDP, s.SCTP
	}
	return PortSet{TCP: unionProtocolPorts(tcp...), UDP: unionProtocolPorts(udp...), SCTP: unionProtocolPorts(sctp...)}
}

// AllPorts reports whether every port of every protocol is open.
func (s PortSet) AllPorts() bool { return s.TCP.All() && s.UDP.All() && s.SCTP.All() }

// IsEmpty reports whether nothing is open.
func (s PortSet) IsEmpty() bool { return s.TCP.IsEmpty() && s.UDP.IsEmpty() && s.SCTP.IsEmpty() }

// String is "all ports", or "TCP 80, 443; UDP 53" listing the protocols with
// open ports.
func (s PortSet) String() string {
	if s.AllPorts() {
		return "all ports"
	}
	var parts []string
	for _, p := range portProtocols {
		if pp := s.Protocol(p); !pp.IsEmpty() {
			parts = append(parts, string(p)+" "+pp.String())
		}
	}
	if len(parts) == 0 {
		return "no ports"
	}
	return strings.Join(parts, "; ")
}

// PortEntryAnalysis is one entry of a rule's ports list.
type PortEntryAnalysis struct {
	// Field is the entry: "spec.ingress[0].ports[1]".
	Field string
	// Ports is what the entry opens. A malformed entry opens every port of
	// its protocol (of every protocol when the protocol is unknown).
	Ports PortSet
}

// analyzePorts reduces a rule's ports list: no entries opens every port of
// every protocol; an entry without port opens every port of its protocol; a
// nil protocol is TCP.
func analyzePorts(ports []networkingv1.NetworkPolicyPort, path string) (PortSet, []PortEntryAnalysis, field.ErrorList) {
	if len(ports) == 0 {
		return AllPortsSet(), nil, nil
	}
	var (
		sets    = make([]PortSet, 0, len(ports))
		entries = make([]PortEntryAnalysis, 0, len(ports))
		errs    field.ErrorList
	)
	for i, p := range ports {
		ep := indexPath(path, i)
		entry, es := analyzePortEntry(p, ep)
		errs = append(errs, es...)
		entries = append(entries, PortEntryAnalysis{Field: ep, Ports: entry})
		sets = append(sets, entry)
	}
	if len(sets) == 1 {
		// An entry's set is already what UnionPortSets would make of it.
		return sets[0], entries, errs
	}
	return UnionPortSets(sets...), entries, errs
}

// analyzePortEntry analyses the ports entry at entryPath; the *field.Path is
// built only for a problem.
func analyzePortEntry(p networkingv1.NetworkPolicyPort, entryPath string) (PortSet, field.ErrorList) {
	var errs field.ErrorList
	path := func() *field.Path { return field.NewPath(entryPath) }
	protocols := []corev1.Protocol{corev1.ProtocolTCP}
	if p.Protocol != nil {
		switch *p.Protocol {
		case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
			protocols = []corev1.Protocol{*p.Protocol}
		default:
			errs = append(errs, field.Invalid(path().Child("protocol"), string(*p.Protocol),
				`must be "TCP", "UDP" or "SCTP"; treated as all three protocols`))
			protocols = portProtocols
		}
	}
	all := func() ProtocolPorts { return ProtocolPorts{Ranges: []PortRange{{1, maxPort}}} }
	var pp ProtocolPorts
	switch {
	case p.Port == nil:
		if p.EndPort != nil {
			errs = append(errs, field.Forbidden(path().Child("endPort"), "endPort needs a numeric port; treated as every port"))
		}
		pp = all()
	case p.Port.Type == intstr.Int:
		from, to := p.Port.IntVal, p.Port.IntVal
		if p.EndPort != nil {
			to = *p.EndPort
		}
		switch {
		case from < 1 || from > maxPort:
			errs = append(errs, field.Invalid(path().Child("port"), from, "must be between 1 and 65535; treated as every port"))
			pp = all()
		case to < from || to > maxPort:
			errs = append(errs, field.Invalid(path().Child("endPort"), to, fmt.Sprintf("must be between port (%d) and 65535; treated as every port", from)))
			pp = all()
		default:
			pp = ProtocolPorts{Ranges: []PortRange{{from, to}}}
		}
	case p.Port.Type == intstr.String:
		name := p.Port.StrVal
		switch {
		case len(validation.IsValidPortName(name)) > 0:
			errs = append(errs, field.Invalid(path().Child("port"), name, "must be a port number or a port name (up to 15 lowercase letters, digits and '-', with a letter); treated as every port"))
			pp = all()
		case p.EndPort != nil:
			errs = append(errs, field.Forbidden(path().Child("endPort"), "endPort needs a numeric port; treated as every port"))
			pp = all()
		default:
			pp = ProtocolPorts{Names: []string{name}}
		}
	default:
		errs = append(errs, field.Invalid(path().Child("port"), p.Port.String(), "must be a port number or name; treated as every port"))
		pp = all()
	}
	var set PortSet
	for _, proto := range protocols {
		*set.protocol(proto) = pp
	}
	return set, errs
}
