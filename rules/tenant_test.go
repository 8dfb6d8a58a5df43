package rules

import (
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestComponentOwnerOrder(t *testing.T) {
	at := func(s int64) time.Time { return time.Unix(s, 0) }
	w := func(kind, name string, created time.Time) Workload {
		return Workload{Kind: kind, Namespace: "shop", Name: name, Created: created, Annotations: map[string]string{AnnotationComponent: "payments"}}
	}
	cases := []struct {
		name      string
		claimants []Workload
		want      string
	}{
		{"earlier creationTimestamp", []Workload{w("Deployment", "b", at(2)), w("Deployment", "a", at(3))}, "Deployment/b"},
		{"one being created comes last", []Workload{w("Deployment", "a", time.Time{}), w("Deployment", "z", at(9))}, "Deployment/z"},
		{"same time: the one named after the component", []Workload{w("Deployment", "evil", at(1)), w("StatefulSet", "payments", at(1))}, "StatefulSet/payments"},
		{"same time: kind, then name", []Workload{w("StatefulSet", "a", at(1)), w("Deployment", "z", at(1)), w("Deployment", "y", at(1))}, "Deployment/y"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			i := ComponentOwner(tc.claimants)
			if got := tc.claimants[i].Ref(); got != tc.want {
				t.Errorf("owner %s, want %s", got, tc.want)
			}
		})
	}
	if ComponentOwner(nil) != -1 {
		t.Errorf("no claimants: want -1")
	}
}

func TestCheckWorkloadSetBlamesTheLaterClaimant(t *testing.T) {
	// "evil" sorts first by name but came later: it is the duplicate.
	ws := []Workload{
		{Kind: "Deployment", Namespace: "shop", Name: "evil", Created: time.Unix(20, 0), Annotations: map[string]string{AnnotationComponent: "payments"}},
		{Kind: "Deployment", Namespace: "shop", Name: "payments", Created: time.Unix(10, 0), Annotations: map[string]string{AnnotationDependsOn: "db:5432"}},
		{Kind: "Deployment", Namespace: "shop", Name: "db", Created: time.Unix(10, 0), Annotations: map[string]string{AnnotationDependsOn: "x:1"}},
	}
	var dups []string
	for _, f := range CheckWorkloadSet(ws) {
		if f.Error != nil {
			dups = append(dups, ws[f.Index].Name+": "+f.Error.Error())
		}
	}
	if len(dups) != 1 || !strings.HasPrefix(dups[0], "evil: ") || !strings.Contains(dups[0], "Deployment/payments") {
		t.Errorf("duplicates %q: want evil's, naming Deployment/payments", dups)
	}
}

func TestAuditBlamesTheTakerNotTheOwner(t *testing.T) {
	// "evil" took payments' policies over (it holds them now) and sorts
	// first by name, but payments was created first: evil is the duplicate.
	payments := Workload{Kind: "Deployment", Namespace: "shop", Name: "payments", Created: time.Unix(10, 0), Annotations: map[string]string{AnnotationDependsOn: "db:5432"}}
	evil := Workload{Kind: "Deployment", Namespace: "shop", Name: "evil", Created: time.Unix(50, 0), Annotations: map[string]string{AnnotationComponent: "payments", AnnotationDependsOn: "api:443"}}
	g, errs := Generate(evil, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	res := AuditNamespace(AuditInput{Namespace: "shop", Policies: g.Policies, Workloads: []Workload{evil, payments}})
	for _, r := range res.Results {
		dup := false
		for _, v := range r.Violations {
			dup = dup || v.Rule == AuditDuplicateComponent
		}
		if want := r.Name == "evil"; r.Kind == "Deployment" && dup != want {
			t.Errorf("%s %s: duplicateComponent %v, want %v (%v)", r.Kind, r.Name, dup, want, r.Violations)
		}
	}
}

func TestGeneratedViolationsNameTheEntry(t *testing.T) {
	w := Workload{Kind: "Deployment", Namespace: "shop", Name: "web", Annotations: map[string]string{AnnotationDependsOn: "api:1-65535 cache:6379"}}
	g, errs := Generate(w, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if vs := GeneratedViolations(w, g, LevelBaseline, LatestVersion()); len(vs) != 0 {
		t.Errorf("baseline: %v", vs)
	}
	for _, level := range []Level{LevelRestricted, LevelManaged} {
		vs := GeneratedViolations(w, g, level, LatestVersion())
		if len(vs) == 0 {
			t.Fatalf("%s: want violations", level)
		}
		for _, v := range vs {
			if v.Rule == "rawNetworkPolicy" || !strings.HasPrefix(v.Message, `entry "api:1-65535": NetworkPolicy "netguard.web.`) || v.Field != "metadata.annotations[netguard.io/depends-on]" {
				t.Errorf("%s: %s", level, v)
			}
		}
	}
	narrow := Workload{Kind: "Deployment", Namespace: "shop", Name: "web", Annotations: map[string]string{AnnotationDependsOn: "api:8080"}}
	g, _ = Generate(narrow, nil)
	if vs := GeneratedViolations(narrow, g, LevelManaged, LatestVersion()); len(vs) != 0 {
		t.Errorf("managed, narrow: %v", vs)
	}
}

func TestGeneratedViolationsLeaveProfilesToTheirScope(t *testing.T) {
	port, end := intstr.FromInt32(1), int32(65535)
	wide := Profile{Name: "wide", Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &port, EndPort: &end}}}}}
	w := Workload{Kind: "Deployment", Namespace: "shop", Name: "web", Annotations: map[string]string{AnnotationProfiles: "wide"}}
	g, errs := Generate(w, map[string]Profile{"wide": wide})
	if len(errs) > 0 || len(g.Policies) != 1 {
		t.Fatal(errs, g.Policies)
	}
	if vs := GeneratedViolations(w, g, LevelRestricted, LatestVersion()); len(vs) != 0 {
		t.Errorf("profile rules judged by level: %v", vs)
	}
}

func TestProfileScope(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kannika"}}
	team := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "data"}}
	cases := []struct {
		sel    *metav1.LabelSelector
		ns     string
		labels map[string]string
		want   bool
	}{
		{nil, "any", nil, true},
		{&metav1.LabelSelector{}, "any", nil, true},
		{sel, "kannika", nil, true},
		{sel, "other", nil, false},
		{sel, "kannika", map[string]string{"team": "data"}, true}, // the name label is implied
		{team, "x", map[string]string{"team": "data"}, true},
		{team, "x", nil, false},
		{&metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}}, "x", nil, false},
	}
	for i, tc := range cases {
		if got := ProfileOffered(Profile{Name: "p", NamespaceSelector: tc.sel}, tc.ns, tc.labels); got != tc.want {
			t.Errorf("case %d: offered %v, want %v", i, got, tc.want)
		}
	}
	p := Profile{Name: "kannika-armory", NamespaceSelector: sel, Egress: []networkingv1.NetworkPolicyEgressRule{{}}}
	w := Workload{Kind: "Deployment", Namespace: "other", Name: "thief", Annotations: map[string]string{AnnotationProfiles: "kannika-armory"}}
	_, errs := Generate(w, map[string]Profile{p.Name: p})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `NetworkProfile "kannika-armory" is not offered to namespace "other"`) {
		t.Fatalf("errors %v", errs)
	}
	if vs := AnnotationViolations(errs); len(vs) != 1 || vs[0].Rule != AuditProfileOutOfScope {
		t.Errorf("violations %v, want one %s", vs, AuditProfileOutOfScope)
	}
}

func TestReservedNames(t *testing.T) {
	for name, want := range map[string]bool{
		DefaultDenyPolicyName: true, AllowDNSPolicyName: true, "netguard.web.to.api": true, "netguard.x": true,
		"netguard-allow-dns-2": false, "netguardx": false, "web": false,
	} {
		if IsReservedPolicyName(name) != want {
			t.Errorf("IsReservedPolicyName(%q) != %v", name, want)
		}
	}
	planted := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "netguard.web.to.api", Namespace: "shop"}}
	res := AuditNamespace(AuditInput{Namespace: "shop", Labels: map[string]string{LabelEnforce: "privileged"}, Policies: []*networkingv1.NetworkPolicy{planted}})
	found := false
	for _, r := range res.Results {
		for _, v := range r.Violations {
			found = found || (r.Name == planted.Name && v.Rule == AuditReservedPolicyName)
		}
	}
	if !found {
		t.Errorf("audit: want %s on the planted policy, got %+v", AuditReservedPolicyName, res.Results)
	}
	// Labelled as netguard's, and only netguard holds fields: not reported.
	own := planted.DeepCopy()
	own.Labels = map[string]string{LabelManagedBy: ManagedByValue}
	if _, squatted := reservedNameViolation(own); squatted {
		t.Errorf("netguard's own policy reported as %s", AuditReservedPolicyName)
	}
	edited := planted.DeepCopy()
	edited.Labels = map[string]string{LabelManagedBy: ManagedByValue}
	edited.ManagedFields = []metav1.ManagedFieldsEntry{
		{Manager: FieldManager, Operation: metav1.ManagedFieldsOperationApply, FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:podSelector":{}}}`)},
		{Manager: "kubectl-edit", Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:ingress":{}}}`)},
		{Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:ownerReferences":{}}}`)},
	}
	if got := ForeignFieldManagers(edited); len(got) != 1 || got[0] != "kubectl-edit" {
		t.Errorf("ForeignFieldManagers %v, want [kubectl-edit]", got)
	}
}
