package rules

import (
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// digestJSON appends to b exactly what encoding/json.Marshal writes for
// Digest's entries (namespace, name and spec of each policy), without
// reflection: the digest is computed twice for every annotated workload at
// admission, and encoding/json's reflection was over a quarter of the work.
// The bytes must never differ, or every recorded digest would look stale; a
// test fills specs at random and compares with encoding/json. It reports
// false for a value it does not write the way encoding/json would (an
// IntOrString of an unknown type); the caller then uses encoding/json.
func digestJSON(b []byte, policies []*networkingv1.NetworkPolicy) ([]byte, bool) {
	b = append(b, '[')
	for i, p := range policies {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"namespace":`...)
		b = appendJSONString(b, p.Namespace)
		b = append(b, `,"name":`...)
		b = appendJSONString(b, p.Name)
		b = append(b, `,"spec":`...)
		var ok bool
		if b, ok = appendSpecJSON(b, &p.Spec); !ok {
			return b, false
		}
		b = append(b, '}')
	}
	return append(b, ']'), true
}

func appendSpecJSON(b []byte, s *networkingv1.NetworkPolicySpec) ([]byte, bool) {
	var ok bool
	b = append(b, `{"podSelector":`...)
	b = appendSelectorJSON(b, &s.PodSelector)
	if len(s.Ingress) > 0 {
		b = append(b, `,"ingress":[`...)
		for i := range s.Ingress {
			if i > 0 {
				b = append(b, ',')
			}
			b, ok = appendRuleJSON(b, s.Ingress[i].Ports, "from", s.Ingress[i].From)
			if !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	if len(s.Egress) > 0 {
		b = append(b, `,"egress":[`...)
		for i := range s.Egress {
			if i > 0 {
				b = append(b, ',')
			}
			b, ok = appendRuleJSON(b, s.Egress[i].Ports, "to", s.Egress[i].To)
			if !ok {
				return b, false
			}
		}
		b = append(b, ']')
	}
	if len(s.PolicyTypes) > 0 {
		b = append(b, `,"policyTypes":[`...)
		for i, t := range s.PolicyTypes {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, string(t))
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

// appendRuleJSON writes an ingress or egress rule: ports, then from or to.
func appendRuleJSON(b []byte, ports []networkingv1.NetworkPolicyPort, peersName string, peers []networkingv1.NetworkPolicyPeer) ([]byte, bool) {
	b = append(b, '{')
	first := true
	if len(ports) > 0 {
		b = append(b, `"ports":[`...)
		for i, p := range ports {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendPortJSON(b, p); !ok {
				return b, false
			}
		}
		b = append(b, ']')
		first = false
	}
	if len(peers) > 0 {
		if !first {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, peersName...)
		b = append(b, `":[`...)
		for i := range peers {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendPeerJSON(b, &peers[i])
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

func appendPortJSON(b []byte, p networkingv1.NetworkPolicyPort) ([]byte, bool) {
	b = append(b, '{')
	sep := func() {
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
	}
	if p.Protocol != nil {
		b = append(b, `"protocol":`...)
		b = appendJSONString(b, string(*p.Protocol))
	}
	if p.Port != nil {
		sep()
		b = append(b, `"port":`...)
		switch p.Port.Type {
		case intstr.Int:
			b = strconv.AppendInt(b, int64(p.Port.IntVal), 10)
		case intstr.String:
			b = appendJSONString(b, p.Port.StrVal)
		default:
			return b, false
		}
	}
	if p.EndPort != nil {
		sep()
		b = append(b, `"endPort":`...)
		b = strconv.AppendInt(b, int64(*p.EndPort), 10)
	}
	return append(b, '}'), true
}

func appendPeerJSON(b []byte, p *networkingv1.NetworkPolicyPeer) []byte {
	b = append(b, '{')
	sep := func() {
		if b[len(b)-1] != '{' {
			b = append(b, ',')
		}
	}
	if p.PodSelector != nil {
		b = append(b, `"podSelector":`...)
		b = appendSelectorJSON(b, p.PodSelector)
	}
	if p.NamespaceSelector != nil {
		sep()
		b = append(b, `"namespaceSelector":`...)
		b = appendSelectorJSON(b, p.NamespaceSelector)
	}
	if p.IPBlock != nil {
		sep()
		b = append(b, `"ipBlock":{"cidr":`...)
		b = appendJSONString(b, p.IPBlock.CIDR)
		if len(p.IPBlock.Except) > 0 {
			b = append(b, `,"except":`...)
			b = appendJSONStrings(b, p.IPBlock.Except)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendSelectorJSON(b []byte, s *metav1.LabelSelector) []byte {
	b = append(b, '{')
	if len(s.MatchLabels) > 0 {
		b = append(b, `"matchLabels":{`...)
		keys := make([]string, 0, len(s.MatchLabels))
		for k := range s.MatchLabels {
			keys = append(keys, k)
		}
		slices.Sort(keys) // encoding/json sorts map keys as strings
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, s.MatchLabels[k])
		}
		b = append(b, '}')
	}
	if len(s.MatchExpressions) > 0 {
		if len(s.MatchLabels) > 0 {
			b = append(b, ',')
		}
		b = append(b, `"matchExpressions":[`...)
		for i, e := range s.MatchExpressions {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"key":`...)
			b = appendJSONString(b, e.Key)
			b = append(b, `,"operator":`...)
			b = appendJSONString(b, string(e.Operator))
			if len(e.Values) > 0 {
				b = append(b, `,"values":`...)
				b = appendJSONStrings(b, e.Values)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendJSONStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJSONString writes s as encoding/json does. Printable ASCII other than
// the characters it escapes (quote, backslash and, for HTML safety, <, > and
// &) is copied; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
