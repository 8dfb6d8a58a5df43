package rules_test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/netguard/netguard/rules"
)

// ruleIDs is the sorted set of rule IDs in vs.
func ruleIDs(vs []rules.Violation) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.Rule)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func TestEquivalentSpellingsGetTheSameVerdict(t *testing.T) {
	groups := []struct {
		name  string
		specs []string
	}{
		{"no from, empty from", []string{
			"podSelector: {}\ningress:\n- ports: [{port: 80}]",
			"podSelector: {}\ningress:\n- from: []\n  ports: [{port: 80}]",
		}},
		{"nil protocol is TCP", []string{
			"podSelector: {matchLabels: {app: a}}\ningress:\n- from: [{podSelector: {matchLabels: {app: b}}}]\n  ports: [{port: 80}]",
			"podSelector: {matchLabels: {app: a}}\ningress:\n- from: [{podSelector: {matchLabels: {app: b}}}]\n  ports: [{port: 80, protocol: TCP}]",
			"podSelector: {matchLabels: {app: a}}\ningress:\n- from: [{podSelector: {matchLabels: {app: b}}}]\n  ports: [{port: 80, endPort: 80}]",
		}},
		{"every port", []string{
			"podSelector: {matchLabels: {app: a}}\ningress:\n- from: [{podSelector: {matchLabels: {app: b}}}]",
			"podSelector: {matchLabels: {app: a}}\ningress:\n- from: [{podSelector: {matchLabels: {app: b}}}]\n  ports: []",
			"podSelector: {matchLabels: {app: a}}\ningress:\n- from: [{podSelector: {matchLabels: {app: b}}}]\n  ports: [{protocol: TCP}, {protocol: UDP}, {protocol: SCTP}]",
			"podSelector: {matchLabels: {app: a}}\ningress:\n- from: [{podSelector: {matchLabels: {app: b}}}]\n  ports: [{port: 1, endPort: 65535}, {port: 1, endPort: 65535, protocol: UDP}, {protocol: SCTP}]",
			"podSelector: {matchLabels: {app: a}}\ningress:\n- from: [{podSelector: {matchLabels: {app: b}}}]\n  ports: [{port: 1, endPort: 100}, {protocol: UDP}, {protocol: SCTP}]\n- from: [{podSelector: {matchLabels: {app: b}}}]\n  ports: [{port: 101, endPort: 65535}]",
		}},
		{"the IPv4 internet", []string{
			"podSelector: {}\npolicyTypes: [Egress]\negress:\n- to: [{ipBlock: {cidr: 0.0.0.0/0}}]\n  ports: [{port: 443}]",
			"podSelector: {}\npolicyTypes: [Egress]\negress:\n- to: [{ipBlock: {cidr: 0.0.0.0/1}}, {ipBlock: {cidr: 128.0.0.0/1}}]\n  ports: [{port: 443}]",
			"podSelector: {}\npolicyTypes: [Egress]\negress:\n- to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]\n  ports: [{port: 443}]",
		}},
		{"every namespace", []string{
			"podSelector: {matchLabels: {app: a}}\ningress:\n- from: [{namespaceSelector: {}}]\n  ports: [{port: 80}]",
			"podSelector: {matchLabels: {app: a}}\ningress:\n- from: [{namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: Exists}]}}]\n  ports: [{port: 80}]",
			"podSelector: {matchLabels: {app: a}}\ningress:\n- from: [{namespaceSelector: {}, podSelector: {}}]\n  ports: [{port: 80}]",
		}},
		{"the own namespace", []string{
			"podSelector: {matchLabels: {app: a}}\ningress:\n- from: [{podSelector: {matchLabels: {app: b}}}]\n  ports: [{port: 80}]",
			"podSelector: {matchLabels: {app: a}}\ningress:\n- from: [{podSelector: {matchLabels: {app: b}}, namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}}]\n  ports: [{port: 80}]",
			"podSelector: {matchLabels: {app: a}}\ningress:\n- from: [{podSelector: {matchExpressions: [{key: app, operator: In, values: [b]}]}, namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [team-a, team-a]}]}}]\n  ports: [{port: 80}]",
		}},
		{"all own pods", []string{
			"podSelector: {}\ningress:\n- from: [{podSelector: {}}]\n  ports: [{port: 80}]",
			"podSelector: {}\ningress:\n- from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}}]\n  ports: [{port: 80}]",
			"podSelector: {}\ningress:\n- from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}, podSelector: {}}]\n  ports: [{port: 80}]",
		}},
		{"defaulted policyTypes", []string{
			"podSelector: {}\negress:\n- to: [{namespaceSelector: {}}]\n  ports: [{port: 53, protocol: UDP}]",
			"podSelector: {}\npolicyTypes: [Ingress, Egress]\negress:\n- to: [{namespaceSelector: {}}]\n  ports: [{port: 53, protocol: UDP}]",
			"podSelector: {}\npolicyTypes: [Egress, Ingress, Egress]\negress:\n- to: [{namespaceSelector: {}}]\n  ports: [{port: 53, protocol: UDP}]",
		}},
		{"host bits", []string{
			"podSelector: {}\ningress:\n- from: [{ipBlock: {cidr: 10.0.0.0/8}}]\n  ports: [{port: 80}]",
			"podSelector: {}\ningress:\n- from: [{ipBlock: {cidr: 10.1.2.3/8}}]\n  ports: [{port: 80}]",
		}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, level := range rules.Levels() {
				var first []string
				for i, spec := range g.specs {
					got := ruleIDs(rules.Evaluate(level, rules.LatestVersion(), specPolicy(t, spec)))
					if i == 0 {
						first = got
						continue
					}
					if !slices.Equal(got, first) {
						t.Errorf("level %s: spelling %d gives %v, spelling 0 gives %v", level, i, got, first)
					}
				}
			}
		})
	}
}

func TestAnalyzeDirections(t *testing.T) {
	cases := []struct {
		name              string
		spec              string
		ingress, egress   bool
		ingressN, egressN int
	}{
		{"no policyTypes, no egress", "podSelector: {}\ningress:\n- {}", true, false, 1, 0},
		{"no policyTypes, egress rules", "podSelector: {}\negress:\n- {}", true, true, 0, 1},
		{"empty egress list", "podSelector: {}\negress: []", true, false, 0, 0},
		{"Egress only: ingress rules kept but ineffective", "podSelector: {}\npolicyTypes: [Egress]\ningress:\n- {}", false, true, 1, 0},
		{"Ingress only: egress rules kept but ineffective", "podSelector: {}\npolicyTypes: [Ingress]\negress:\n- {}\n- {}", true, false, 0, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := rules.Analyze(specPolicy(t, tc.spec))
			if a.Ingress.Effective != tc.ingress || a.Egress.Effective != tc.egress {
				t.Errorf("effective ingress=%v egress=%v, want %v %v", a.Ingress.Effective, a.Egress.Effective, tc.ingress, tc.egress)
			}
			if len(a.Ingress.Rules) != tc.ingressN || len(a.Egress.Rules) != tc.egressN {
				t.Errorf("rules ingress=%d egress=%d, want %d %d", len(a.Ingress.Rules), len(a.Egress.Rules), tc.ingressN, tc.egressN)
			}
			if len(a.Problems) != 0 {
				t.Errorf("problems: %v", a.Problems)
			}
		})
	}
}

func TestAnalyzePeerClasses(t *testing.T) {
	np := specPolicy(t, `
podSelector: {matchLabels: {app: web}}
ingress:
- {}
- from:
  - ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}
  - namespaceSelector: {}
  - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: Exists}]}
  - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [team-b]}]}
  - namespaceSelector: {matchExpressions: [{key: env, operator: Exists}]}
  - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}
  - namespaceSelector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [team-a]}, {key: env, operator: DoesNotExist}]}
  - podSelector: {}
  - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-b}}
`)
	a := rules.Analyze(np)
	var got []string
	for _, r := range a.Ingress.Rules {
		for _, p := range r.Peers {
			got = append(got, p.Field+" "+string(p.Class))
		}
	}
	want := []string{
		"spec.ingress[0] anywhere",
		"spec.ingress[1].from[0] ipBlock",
		"spec.ingress[1].from[1] allNamespaces",
		"spec.ingress[1].from[2] allNamespaces",
		"spec.ingress[1].from[3] otherNamespaces",
		"spec.ingress[1].from[4] otherNamespaces",
		"spec.ingress[1].from[5] ownNamespace",
		"spec.ingress[1].from[6] ownNamespace",
		"spec.ingress[1].from[7] ownNamespace",
		"spec.ingress[1].from[8] otherNamespaces",
	}
	if !slices.Equal(got, want) {
		t.Errorf("classes:\n got %q\nwant %q", got, want)
	}
	if s := a.Ingress.Rules[1].Peers[0].Addresses.String(); s != "0.0.0.0/5, 8.0.0.0/7, 11.0.0.0/8, 12.0.0.0/6, 16.0.0.0/4, 32.0.0.0/3, 64.0.0.0/2, 128.0.0.0/1" {
		t.Errorf("0.0.0.0/0 except 10.0.0.0/8 = %s", s)
	}
}

func TestAnalyzeWithoutNamespace(t *testing.T) {
	np := specPolicy(t, `
podSelector: {}
ingress:
- from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}}]
  ports: [{port: 80}]`)
	np.Namespace = ""
	a := rules.Analyze(np)
	if c := a.Ingress.Rules[0].Peers[0].Class; c != rules.PeerOtherNamespaces {
		t.Errorf("a pin in a policy without namespace is %s, want otherNamespaces", c)
	}
	got := violationStrings(rules.Evaluate(rules.LevelBaseline, rules.LatestVersion(), np))
	want := []string{`[ingressFromOtherNamespaces] spec.ingress[0].from[0].namespaceSelector: allows traffic from pods in namespaces matching kubernetes.io/metadata.name=team-a, which need not be the policy's own (it has no namespace); traffic across namespaces is reserved for platform NetworkProfiles: use one, or drop namespaceSelector to stay in the policy's namespace`}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestAnalyzePorts(t *testing.T) {
	a := rules.Analyze(specPolicy(t, `
podSelector: {}
ingress:
- from: [{podSelector: {matchLabels: {app: a}}}]
  ports:
  - {port: 81}
  - {port: 80}
  - {port: 82, endPort: 90}
  - {port: http}
  - {port: 53, protocol: UDP}
  - {protocol: SCTP}
  - {port: http, protocol: TCP}`))
	r := a.Ingress.Rules[0]
	if got, want := r.Ports.String(), "TCP 80-90, http; UDP 53; SCTP all"; got != want {
		t.Errorf("ports %q, want %q", got, want)
	}
	if got := r.Ports.Protocol(corev1.ProtocolTCP).Count(); got != 11 {
		t.Errorf("TCP count %d, want 11", got)
	}
	if !r.Ports.SCTP.All() || r.Ports.AllPorts() {
		t.Error("SCTP must be all, the set not")
	}
	if len(r.PortEntries) != 7 || r.PortEntries[6].Field != "spec.ingress[0].ports[6]" {
		t.Errorf("entries: %+v", r.PortEntries)
	}
	if got := rules.AllPortsSet().String(); got != "all ports" {
		t.Errorf("AllPortsSet: %q", got)
	}
}

func TestAddressSet(t *testing.T) {
	p := func(s string) rules.AddressSet { return rules.AddressSetOf(netip.MustParsePrefix(s)) }
	halves := p("0.0.0.0/1").Union(p("128.0.0.0/1"))
	if !halves.AllIPv4() || halves.AllIPv6() || !halves.Equal(rules.AllIPv4Addresses()) {
		t.Errorf("halves: %s", halves)
	}
	v6 := p("::/1").Union(p("8000::/1"))
	if !v6.AllIPv6() || v6.AllIPv4() {
		t.Errorf("v6 halves: %s", v6)
	}
	// IPv4-mapped IPv6 addresses are IPv6, as the API server parses them.
	if p("::ffff:0:0/96").Subtract(rules.AllIPv6Addresses()).IsEmpty() != true {
		t.Error("::ffff:0:0/96 must be IPv6")
	}
	holes := p("10.0.0.0/8").Subtract(p("10.1.0.0/16")).Subtract(p("10.255.255.255/32"))
	if got := holes.String(); got != "10.0.0.0/16, 10.2.0.0/15, 10.4.0.0/14, 10.8.0.0/13, 10.16.0.0/12, 10.32.0.0/11, 10.64.0.0/10, 10.128.0.0/10, 10.192.0.0/11, 10.224.0.0/12, 10.240.0.0/13, 10.248.0.0/14, 10.252.0.0/15, 10.254.0.0/16, 10.255.0.0/17, 10.255.128.0/18, 10.255.192.0/19, 10.255.224.0/20, 10.255.240.0/21, 10.255.248.0/22, 10.255.252.0/23, 10.255.254.0/24, 10.255.255.0/25, 10.255.255.128/26, 10.255.255.192/27, 10.255.255.224/28, 10.255.255.240/29, 10.255.255.248/30, 10.255.255.252/31, 10.255.255.254/32" {
		t.Errorf("holes: %s", got)
	}
	if !p("10.0.0.0/8").Contains(p("10.3.0.0/16")) || p("10.3.0.0/16").Contains(p("10.0.0.0/8")) {
		t.Error("Contains")
	}
	all := rules.AllIPv4Addresses().Union(rules.AllIPv6Addresses())
	if got := all.String(); got != "0.0.0.0/0, ::/0" {
		t.Errorf("all: %s", got)
	}
	if got := all.Subtract(all).String(); got != "none" {
		t.Errorf("empty: %s", got)
	}
	if got := p("255.255.255.255/32").Union(p("255.255.255.254/32")).String(); got != "255.255.255.254/31" {
		t.Errorf("top of the range: %s", got)
	}
}

func TestNilPolicy(t *testing.T) {
	a := rules.Analyze(nil)
	if a == nil || len(a.Problems) != 1 || a.Ingress.Effective || a.Egress.Effective {
		t.Fatalf("Analyze(nil) = %+v", a)
	}
	for _, level := range rules.Levels() {
		got := violationStrings(rules.Evaluate(level, rules.LatestVersion(), nil))
		var want []string
		switch level {
		case rules.LevelPrivileged:
			want = []string{}
		case rules.LevelManaged:
			want = []string{"[malformedPolicy] required value: no NetworkPolicy to evaluate; the API server rejects this, fix it", "[rawNetworkPolicy] only platform identities and netguard's generated policies may write NetworkPolicies in this namespace; declare connections with netguard annotations and NetworkProfiles instead"}
		default:
			want = []string{"[malformedPolicy] required value: no NetworkPolicy to evaluate; the API server rejects this, fix it"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("level %s: got %q, want %q", level, got, want)
		}
	}
}

func TestEvaluateUnknownLevelIsRestricted(t *testing.T) {
	np := specPolicy(t, "podSelector: {}\ningress:\n- from: [{podSelector: {}}]")
	got := ruleIDs(rules.Evaluate("bogus", rules.LatestVersion(), np))
	want := ruleIDs(rules.Evaluate(rules.LevelRestricted, rules.LatestVersion(), np))
	if !slices.Equal(got, want) || len(got) == 0 {
		t.Errorf("unknown level: %v, restricted: %v", got, want)
	}
}

func TestEvaluateDoesNotModifyThePolicy(t *testing.T) {
	np := specPolicy(t, `
podSelector: {matchLabels: {b: "2", a: "1"}}
ingress:
- from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.2.0.0/16, 10.1.0.0/16]}}]
  ports: [{port: 90}, {port: 80}]`)
	before := np.DeepCopy()
	for _, l := range rules.Levels() {
		rules.Evaluate(l, rules.LatestVersion(), np)
	}
	if !equalPolicies(before, np) {
		t.Error("Evaluate modified its argument")
	}
}

func equalPolicies(a, b *networkingv1.NetworkPolicy) bool {
	return a.String() == b.String()
}

func TestLevels(t *testing.T) {
	var names []string
	for i, l := range rules.Levels() {
		if l.Rank() != i {
			t.Errorf("%s has rank %d, want %d", l, l.Rank(), i)
		}
		names = append(names, string(l))
		parsed, err := rules.ParseLevel(string(l))
		if err != nil || parsed != l {
			t.Errorf("ParseLevel(%q) = %q, %v", l, parsed, err)
		}
	}
	if got := strings.Join(names, " "); got != "privileged baseline restricted managed" {
		t.Errorf("Levels() = %s", got)
	}
	_, err := rules.ParseLevel("Restricted")
	if err == nil || err.Error() != `unknown level "Restricted": must be one of privileged, baseline, restricted, managed` {
		t.Errorf("ParseLevel error: %v", err)
	}
	if rules.Level("x").Rank() != -1 {
		t.Error("unknown level must rank -1")
	}
}

func TestVersions(t *testing.T) {
	for _, s := range []string{"latest", "v1.0", "v1.12", "v2.3"} {
		v, err := rules.ParseVersion(s)
		if err != nil || v.String() != s {
			t.Errorf("ParseVersion(%q) = %s, %v", s, v, err)
		}
	}
	for _, s := range []string{"", "1.0", "v1", "v0.9", "v1.01", "V1.0", "v1.0.0", "Latest"} {
		if _, err := rules.ParseVersion(s); err == nil {
			t.Errorf("ParseVersion(%q) accepted", s)
		}
	}
	_, err := rules.ParseVersion("1.0")
	if err == nil || err.Error() != `unknown version "1.0": must be "latest" or "v<major>.<minor>" such as "v1.0"` {
		t.Errorf("error: %v", err)
	}
	v10, v12, latest := rules.MajorMinorVersion(1, 0), rules.MajorMinorVersion(1, 2), rules.LatestVersion()
	if !v10.Older(v12) || v12.Older(v10) || !v12.Older(latest) || latest.Older(v12) || latest.Older(latest) {
		t.Error("Older")
	}
	if (rules.Version{}) != latest {
		t.Error("the zero Version must be latest")
	}
}
