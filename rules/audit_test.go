package rules_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/netguard/netguard/rules"
)

var auditDefaults = rules.NamespacePolicy{
	Enforce: rules.LevelVersion{Level: rules.LevelBaseline, Version: rules.LatestVersion()},
	Audit:   rules.LevelVersion{Level: rules.LevelRestricted, Version: rules.LatestVersion()},
	Warn:    rules.LevelVersion{Level: rules.LevelRestricted, Version: rules.LatestVersion()},
}

// healthyNamespace is a namespace as netguard leaves it: web depends on api,
// api uses the metrics profile, every generated policy and record is in
// place, and a raw policy that passes restricted.
func healthyNamespace(t *testing.T) rules.AuditInput {
	t.Helper()
	in := rules.AuditInput{
		Namespace: testNamespace,
		Defaults:  auditDefaults,
		Profiles: map[string]rules.Profile{"metrics": {Name: "metrics", Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}}}},
			// No protocol: the API server stores TCP. The audit must
			// not call that stale.
			Ports: []networkingv1.NetworkPolicyPort{{Port: ptr(intstr.FromInt32(9090))}},
		}}}},
		Workloads: []rules.Workload{
			{Kind: "Deployment", Namespace: testNamespace, Name: "web", UID: "uid-web", Annotations: map[string]string{rules.AnnotationDependsOn: "api:8080"}},
			{Kind: "StatefulSet", Namespace: testNamespace, Name: "api", UID: "uid-api", Annotations: map[string]string{rules.AnnotationProfiles: "metrics"}},
			{Kind: "Deployment", Namespace: testNamespace, Name: "plain", Annotations: map[string]string{"team": "a"}},
		},
		Policies: []*networkingv1.NetworkPolicy{specPolicy(t, `
podSelector: {matchLabels: {app: db}}
ingress:
- from: [{podSelector: {matchLabels: {app: api}}}]
  ports: [{port: 5432}]
`)},
	}
	in.Policies[0].Name = "db-from-api"
	for i, w := range in.Workloads {
		g, errs := rules.Generate(w, in.Profiles)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		if len(g.Policies) == 0 {
			continue
		}
		in.Workloads[i].Annotations[rules.AnnotationGenerated] = g.Record().String()
		for _, p := range g.Policies {
			in.Policies = append(in.Policies, storedAsAPIServer(p))
		}
	}
	for _, p := range rules.NamespaceBaseline(testNamespace, rules.BaselineOptions{}) {
		in.Policies = append(in.Policies, storedAsAPIServer(p))
	}
	return in
}

func ptr[T any](v T) *T { return &v }

// storedAsAPIServer applies the API server's NetworkPolicy defaults.
func storedAsAPIServer(p *networkingv1.NetworkPolicy) *networkingv1.NetworkPolicy {
	p = p.DeepCopy()
	tcp := corev1.ProtocolTCP
	for i := range p.Spec.Ingress {
		for j := range p.Spec.Ingress[i].Ports {
			if p.Spec.Ingress[i].Ports[j].Protocol == nil {
				p.Spec.Ingress[i].Ports[j].Protocol = &tcp
			}
		}
	}
	p.UID = types.UID("uid-" + p.Name)
	return p
}

// findings renders every violation of the audit as "Kind/name [rule] field",
// sorted, leaving out messages so that tables stay readable.
func findings(a rules.NamespaceAudit) []string {
	out := []string{}
	for _, r := range a.Results {
		for _, v := range r.Violations {
			s := r.Kind + "/" + r.Name + " [" + v.Rule + "]"
			if v.Field != "" {
				s += " " + v.Field
			}
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func policyNamed(in *rules.AuditInput, name string) *networkingv1.NetworkPolicy {
	for _, p := range in.Policies {
		if p.Name == name {
			return p
		}
	}
	return nil
}

func removePolicy(in *rules.AuditInput, name string) {
	in.Policies = slices.DeleteFunc(in.Policies, func(p *networkingv1.NetworkPolicy) bool { return p.Name == name })
}

func TestAuditNamespaceFindings(t *testing.T) {
	const rec = `metadata.annotations[netguard.io/generated]`
	cases := []struct {
		name   string
		change func(t *testing.T, in *rules.AuditInput)
		want   []string
	}{
		{"a healthy namespace has no findings", func(*testing.T, *rules.AuditInput) {}, []string{}},
		{"raw policies are judged at the enforce level", func(t *testing.T, in *rules.AuditInput) {
			p := specPolicy(t, "podSelector: {}\ningress:\n- from: [{ipBlock: {cidr: 10.0.0.0/8}}]\n  ports: [{port: 80}]\n")
			p.Name = "from-ipblock"
			in.Policies = append(in.Policies, p)
		}, []string{"NetworkPolicy/from-ipblock [ingressFromIPBlock] spec.ingress[0].from[0].ipBlock"}},
		{"missing default-deny", func(_ *testing.T, in *rules.AuditInput) {
			removePolicy(in, rules.DefaultDenyPolicyName)
		}, []string{"Namespace/team-a [missingDefaultDeny]"}},
		{"a default-deny that allows something", func(_ *testing.T, in *rules.AuditInput) {
			policyNamed(in, rules.DefaultDenyPolicyName).Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
		}, []string{"Namespace/team-a [weakDefaultDeny]"}},
		{"a default-deny for ingress only", func(_ *testing.T, in *rules.AuditInput) {
			policyNamed(in, rules.DefaultDenyPolicyName).Spec.PolicyTypes = nil
		}, []string{"Namespace/team-a [weakDefaultDeny]"}},
		{"missing allow-dns", func(_ *testing.T, in *rules.AuditInput) {
			removePolicy(in, rules.AllowDNSPolicyName)
		}, []string{"Namespace/team-a [missingGeneratedPolicy]"}},
		{"changed allow-dns", func(_ *testing.T, in *rules.AuditInput) {
			policyNamed(in, rules.AllowDNSPolicyName).Spec.Egress[0].Ports = nil
		}, []string{"Namespace/team-a [staleGeneratedPolicy]"}},
		{"a privileged namespace has no baseline, even with annotated workloads", func(_ *testing.T, in *rules.AuditInput) {
			in.Labels = map[string]string{rules.LabelEnforce: "privileged"}
			removePolicy(in, rules.DefaultDenyPolicyName)
			removePolicy(in, rules.AllowDNSPolicyName)
		}, []string{}},
		{"a bad enforce label", func(_ *testing.T, in *rules.AuditInput) {
			in.Labels = map[string]string{rules.LabelEnforce: "strict", rules.LabelWarnVersion: "v1"}
		}, []string{
			// Treated as managed, the raw policy now violates.
			"Namespace/team-a [invalidNamespaceLabel] metadata.labels[netguard.io/enforce]",
			"Namespace/team-a [invalidNamespaceLabel] metadata.labels[netguard.io/warn-version]",
			"NetworkPolicy/db-from-api [rawNetworkPolicy]",
		}},
		{"annotations that do not parse", func(_ *testing.T, in *rules.AuditInput) {
			in.Workloads[0].Annotations[rules.AnnotationDependsOn] = "api"
		}, []string{"Deployment/web [invalidAnnotations] metadata.annotations[netguard.io/depends-on]"}},
		{"an unknown profile", func(_ *testing.T, in *rules.AuditInput) {
			delete(in.Profiles, "metrics")
		}, []string{"StatefulSet/api [unknownProfile] metadata.annotations[netguard.io/profiles]"}},
		{"a component claimed twice", func(_ *testing.T, in *rules.AuditInput) {
			in.Workloads = append(in.Workloads, rules.Workload{Kind: "Deployment", Namespace: testNamespace, Name: "web2",
				Annotations: map[string]string{rules.AnnotationComponent: "web"}})
		}, []string{"Deployment/web2 [duplicateComponent] metadata.annotations[netguard.io/component]"}},
		{"a missing generated policy", func(_ *testing.T, in *rules.AuditInput) {
			removePolicy(in, "netguard.web.to.api")
		}, []string{"Deployment/web [missingGeneratedPolicy]"}},
		{"a changed generated policy", func(_ *testing.T, in *rules.AuditInput) {
			p := policyNamed(in, "netguard.web.depends-on")
			p.Spec.Egress[0].Ports[0].Port = ptr(intstr.FromInt32(9999))
		}, []string{"Deployment/web [staleGeneratedPolicy]"}},
		{"a workload netguard never injected", func(_ *testing.T, in *rules.AuditInput) {
			delete(in.Workloads[0].Annotations, rules.AnnotationGenerated)
		}, []string{"Deployment/web [missingGeneratedRecord] " + rec}},
		{"a record that is not one", func(_ *testing.T, in *rules.AuditInput) {
			in.Workloads[0].Annotations[rules.AnnotationGenerated] = "yes"
		}, []string{"Deployment/web [staleGeneratedRecord] " + rec}},
		{"a profile changed since injection", func(_ *testing.T, in *rules.AuditInput) {
			p := in.Profiles["metrics"]
			p.Ingress = append(p.Ingress, networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{{Port: ptr(intstr.FromInt32(9091))}}})
			in.Profiles["metrics"] = p
		}, []string{
			"StatefulSet/api [staleGeneratedPolicy]",
			"StatefulSet/api [staleGeneratedRecord] " + rec,
		}},
		{"a generated policy nobody generates any more", func(_ *testing.T, in *rules.AuditInput) {
			delete(in.Workloads[0].Annotations, rules.AnnotationDependsOn)
			in.Workloads[0].Annotations[rules.AnnotationComponent] = "web"
			g, _ := rules.Generate(in.Workloads[0], in.Profiles)
			in.Workloads[0].Annotations[rules.AnnotationGenerated] = g.Record().String()
		}, []string{
			"NetworkPolicy/netguard.web.depends-on [orphanedGeneratedPolicy]",
			"NetworkPolicy/netguard.web.to.api [orphanedGeneratedPolicy]",
		}},
		{"the policies of a workload with errors are its own finding, not orphans", func(_ *testing.T, in *rules.AuditInput) {
			in.Workloads[0].Annotations[rules.AnnotationDependsOn] = "api:99999"
		}, []string{"Deployment/web [invalidAnnotations] metadata.annotations[netguard.io/depends-on]"}},
		{"a workload without annotations is not audited", func(_ *testing.T, in *rules.AuditInput) {
			in.Workloads[2].Annotations[rules.AnnotationGenerated] = "garbage"
		}, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := healthyNamespace(t)
			tc.change(t, &in)
			got := findings(rules.AuditNamespace(in))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("findings:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestAuditNamespaceLevels(t *testing.T) {
	open := specPolicy(t, "podSelector: {}\ningress:\n- from: [{podSelector: {}}]\n")
	open.Name = "same-namespace"
	anywhere := specPolicy(t, "podSelector: {}\ningress:\n- {}\n")
	anywhere.Name = "anywhere"
	managed := specPolicy(t, "podSelector: {}\ningress:\n- {}\n")
	managed.Name = "looks-generated"
	managed.Labels = map[string]string{rules.LabelManagedBy: rules.ManagedByValue}
	managed.Annotations = map[string]string{rules.AnnotationWorkload: "Deployment/gone"}
	baseline := rules.NamespaceBaseline(testNamespace, rules.BaselineOptions{})
	allowDNS, deny := baseline[0], baseline[1]

	type levelRules map[string][]string
	cases := []struct {
		name    string
		labels  map[string]string
		enforce string
		// per result: level -> rule IDs, "" the enforce level
		want     map[string]levelRules
		failing  map[rules.Level]int
		noDeny   bool
		nsFinder []string
	}{
		{
			name: "baseline", enforce: "baseline",
			want: map[string]levelRules{
				"anywhere":        {"": {"ingressFromAnywhere"}, "restricted": {"ingressAllPorts", "ingressFromAnywhere"}, "managed": {"ingressAllPorts", "ingressFromAnywhere", "rawNetworkPolicy"}},
				"same-namespace":  {"restricted": {"ingressAllPodsFromAllPods", "ingressAllPorts"}, "managed": {"ingressAllPodsFromAllPods", "ingressAllPorts", "rawNetworkPolicy"}},
				"looks-generated": {"": {"orphanedGeneratedPolicy"}},
			},
			failing: map[rules.Level]int{rules.LevelPrivileged: 0, rules.LevelBaseline: 1, rules.LevelRestricted: 2, rules.LevelManaged: 2},
		},
		{
			name: "privileged is not guarded but still judged at stricter levels", labels: map[string]string{rules.LabelEnforce: "privileged"}, enforce: "privileged",
			want: map[string]levelRules{
				"anywhere":        {"baseline": {"ingressFromAnywhere"}, "restricted": {"ingressAllPorts", "ingressFromAnywhere"}, "managed": {"ingressAllPorts", "ingressFromAnywhere", "rawNetworkPolicy"}},
				"same-namespace":  {"restricted": {"ingressAllPodsFromAllPods", "ingressAllPorts"}, "managed": {"ingressAllPodsFromAllPods", "ingressAllPorts", "rawNetworkPolicy"}},
				"looks-generated": {"": {"orphanedGeneratedPolicy"}},
			},
			failing: map[rules.Level]int{rules.LevelPrivileged: 0, rules.LevelBaseline: 1, rules.LevelRestricted: 2, rules.LevelManaged: 2},
			noDeny:  true,
		},
		{
			name: "managed, pinned", labels: map[string]string{rules.LabelEnforce: "managed", rules.LabelEnforceVersion: "v1.0"}, enforce: "managed:v1.0",
			want: map[string]levelRules{
				"anywhere":        {"": {"ingressAllPorts", "ingressFromAnywhere", "rawNetworkPolicy"}},
				"same-namespace":  {"": {"ingressAllPodsFromAllPods", "ingressAllPorts", "rawNetworkPolicy"}},
				"looks-generated": {"": {"orphanedGeneratedPolicy"}},
			},
			failing: map[rules.Level]int{rules.LevelPrivileged: 0, rules.LevelBaseline: 0, rules.LevelRestricted: 0, rules.LevelManaged: 2},
		},
		{
			name: "missing default-deny in a guarded namespace", enforce: "restricted", labels: map[string]string{rules.LabelEnforce: "restricted"},
			want: map[string]levelRules{
				"anywhere":        {"": {"ingressAllPorts", "ingressFromAnywhere"}, "managed": {"ingressAllPorts", "ingressFromAnywhere", "rawNetworkPolicy"}},
				"same-namespace":  {"": {"ingressAllPodsFromAllPods", "ingressAllPorts"}, "managed": {"ingressAllPodsFromAllPods", "ingressAllPorts", "rawNetworkPolicy"}},
				"looks-generated": {"": {"orphanedGeneratedPolicy"}},
			},
			failing:  map[rules.Level]int{rules.LevelRestricted: 2, rules.LevelManaged: 2},
			noDeny:   true,
			nsFinder: []string{"missingDefaultDeny"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := rules.AuditInput{Namespace: testNamespace, Labels: tc.labels, Defaults: auditDefaults,
				Policies: []*networkingv1.NetworkPolicy{open, anywhere, managed, allowDNS}}
			if !tc.noDeny {
				in.Policies = append(in.Policies, deny)
			}
			a := rules.AuditNamespace(in)
			if a.Enforce.String() != tc.enforce {
				t.Errorf("enforce %s, want %s", a.Enforce, tc.enforce)
			}
			if a.RawPolicies != 2 {
				t.Errorf("RawPolicies %d, want 2", a.RawPolicies)
			}
			var order []string
			got := map[string]levelRules{}
			for _, r := range a.Results {
				order = append(order, r.Kind+"/"+r.Name)
				if r.Kind == "Namespace" {
					var ids []string
					for _, v := range r.Violations {
						ids = append(ids, v.Rule)
					}
					if !reflect.DeepEqual(ids, tc.nsFinder) {
						t.Errorf("namespace findings %q, want %q", ids, tc.nsFinder)
					}
					continue
				}
				lr := levelRules{}
				if len(r.Violations) > 0 {
					lr[""] = ruleIDs(r.Violations)
				}
				for _, s := range r.Stricter {
					if s.Level.Version != a.Enforce.Version {
						t.Errorf("%s: stricter level %s is not at the enforce version %s", r.Name, s.Level, a.Enforce.Version)
					}
					lr[string(s.Level.Level)] = ruleIDs(s.Violations)
				}
				got[r.Name] = lr
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("results:\n got %v\nwant %v", got, tc.want)
			}
			wantOrder := []string{"Namespace/team-a", "NetworkPolicy/anywhere", "NetworkPolicy/looks-generated", "NetworkPolicy/same-namespace"}
			if !reflect.DeepEqual(order, wantOrder) {
				t.Errorf("order %q, want %q", order, wantOrder)
			}
			for l, n := range tc.failing {
				if got := a.FailingPolicies(l); got != n {
					t.Errorf("FailingPolicies(%s) = %d, want %d", l, got, n)
				}
			}
		})
	}
}

// TestAuditNamespaceMessages pins the words a person reads for the findings
// that tell them what to do.
func TestAuditNamespaceMessages(t *testing.T) {
	in := healthyNamespace(t)
	removePolicy(&in, rules.DefaultDenyPolicyName)
	in.Labels = map[string]string{rules.LabelEnforce: "strict"}
	delete(in.Profiles, "metrics")
	delete(in.Workloads[0].Annotations, rules.AnnotationGenerated)
	a := rules.AuditNamespace(in)
	var got []string
	for _, r := range a.Results {
		for _, v := range r.Violations {
			if v.Rule != "rawNetworkPolicy" {
				got = append(got, r.Kind+"/"+r.Name+": "+v.String())
			}
		}
	}
	want := []string{
		`Namespace/team-a: [invalidNamespaceLabel] metadata.labels[netguard.io/enforce]: unknown level "strict": must be one of privileged, baseline, restricted, managed; netguard treats it as managed, the strictest level: fix the label`,
		`Namespace/team-a: [missingDefaultDeny] NetworkPolicy "netguard-default-deny" is missing, so pods that no other policy selects accept and send any traffic, although the namespace enforces "managed"; netguard serve creates it (podSelector {}, policyTypes [Ingress, Egress], no rules)`,
		`Deployment/web: [missingGeneratedRecord] metadata.annotations[netguard.io/generated]: netguard has not injected this workload (it was last written while netguard was not running), so its pods may lack the netguard.io/component label its policies select; netguard serve backfills it`,
		`StatefulSet/api: [unknownProfile] metadata.annotations[netguard.io/profiles]: Not found: "metrics": NetworkProfile "metrics" does not exist; NetworkProfiles are cluster-scoped and owned by the platform team: fix the name, or ask the platform team to create it; netguard generates nothing new for this workload until then`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("messages:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

func TestAuditRuleIDs(t *testing.T) {
	checks := map[string]bool{}
	for _, c := range rules.Checks() {
		checks[c.ID] = true
	}
	ids := rules.AuditRules()
	if !slices.IsSorted(ids) {
		t.Errorf("AuditRules not sorted: %q", ids)
	}
	for i, id := range ids {
		if checks[id] {
			t.Errorf("audit rule %q is also a check ID", id)
		}
		if i > 0 && ids[i-1] == id {
			t.Errorf("audit rule %q listed twice", id)
		}
		if id == "" || strings.ToLower(id[:1]) != id[:1] || strings.ContainsAny(id, "-_. ") {
			t.Errorf("audit rule %q is not lowerCamel", id)
		}
	}
}
