package webhook

import (
	"context"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// Issue 14: a tenant with create rights in one namespace.

func TestMutatorRefusesASecondClaimant(t *testing.T) {
	for _, ns := range []string{"team", "lax"} {
		owner := webhooktest.Deployment(ns, "payments", map[string]string{rules.AnnotationDependsOn: "db:5432"})
		s, _ := testServer(t, owner)
		m := &workloadMutator{s: s}
		evil := webhooktest.Deployment(ns, "evil", map[string]string{rules.AnnotationComponent: "payments"})
		resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, evil, nil, false))
		if ns == "team" {
			if resp.Allowed || resp.Result == nil || !strings.Contains(resp.Result.Message, `Duplicate value: "payments"`) || !strings.Contains(resp.Result.Message, "Deployment/payments") {
				t.Errorf("%s: want a Duplicate denial naming Deployment/payments, got %+v", ns, resp.AdmissionResponse)
			}
			continue
		}
		// Enforce privileged: warned, and nothing injected.
		if !resp.Allowed || len(resp.Patches) != 0 || !strings.Contains(strings.Join(resp.Warnings, "\n"), "Deployment/payments") {
			t.Errorf("%s: want an allowed response with a warning and no patch, got %+v", ns, resp.AdmissionResponse)
		}
		// The owner itself is still admitted.
		if again := m.Handle(context.Background(), workloadRequest(t, admissionv1.Update, owner, owner, false)); !again.Allowed || len(again.Warnings) != 0 {
			t.Errorf("%s: the owner's own update: %+v", ns, again.AdmissionResponse)
		}
	}
}

func TestMutatorRefusesAnOlderWorkloadTakingAComponentByUpdate(t *testing.T) {
	owner := webhooktest.Deployment("team", "payments", map[string]string{rules.AnnotationDependsOn: "db:5432"})
	owner.CreationTimestamp = metav1.Unix(2000, 0)
	older := webhooktest.Deployment("team", "aaa", map[string]string{rules.AnnotationDependsOn: "db:5432"})
	older.CreationTimestamp = metav1.Unix(1000, 0)
	s, _ := testServer(t, owner, older)
	m := &workloadMutator{s: s}
	claim := older.DeepCopy()
	claim.Annotations[rules.AnnotationComponent] = "payments"
	resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Update, claim, older, false))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "Deployment/payments") {
		t.Errorf("want a denial naming Deployment/payments, got %+v", resp.AdmissionResponse)
	}
}

func TestApplierWritesNothingForASecondClaimant(t *testing.T) {
	owner := webhooktest.Deployment("lax", "payments", map[string]string{rules.AnnotationDependsOn: "db:5432"})
	s, c := testServer(t, owner)
	a := &workloadApplier{s: s}
	evil := webhooktest.Deployment("lax", "evil", map[string]string{rules.AnnotationComponent: "payments", rules.AnnotationDependsOn: "api:443"})
	if resp := a.Handle(context.Background(), workloadRequest(t, admissionv1.Create, evil, nil, false)); !resp.Allowed {
		t.Fatalf("applier: %+v", resp.AdmissionResponse)
	}
	list := &networkingv1.NetworkPolicyList{}
	if err := c.List(context.Background(), list); err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		t.Errorf("NetworkPolicy %s written for a workload that does not own its component", p.Name)
	}
}

func TestMutatorJudgesGeneratedPoliciesByLevel(t *testing.T) {
	s, _ := testServer(t)
	s.namespaces = &fakeNamespaces{labels: map[string]map[string]string{
		"strict": {rules.LabelEnforce: "restricted"},
		"team":   {},
	}}
	m := &workloadMutator{s: s}
	ann := map[string]string{rules.AnnotationDependsOn: "api:1-65535 api:1-65535/udp cache:6379"}

	resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, webhooktest.Deployment("strict", "web", ann), nil, false))
	if resp.Allowed {
		t.Fatalf("restricted: want a denial, got allowed")
	}
	msg := resp.Result.Message
	for _, want := range []string{`deployments.apps "web" is forbidden: violates netguard "restricted"`, `entry "api:1-65535"`, `entry "api:1-65535/UDP"`, "[ingressAllPorts]", "[egressAllPorts]"} {
		if !strings.Contains(msg, want) {
			t.Errorf("denial %q: want %q in it", msg, want)
		}
	}
	if strings.Contains(msg, "cache:6379") {
		t.Errorf("denial %q blames the narrow entry cache:6379", msg)
	}

	// Enforce baseline, warn restricted: admitted with the same findings as warnings.
	resp = m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, webhooktest.Deployment("team", "web", ann), nil, false))
	warnings := strings.Join(resp.Warnings, "\n")
	if !resp.Allowed || len(resp.Patches) == 0 || !strings.Contains(warnings, `would violate netguard "restricted"`) || !strings.Contains(warnings, `entry "api:1-65535"`) {
		t.Errorf("baseline: want an injected workload with warnings, got allowed=%v warnings %q", resp.Allowed, warnings)
	}
}

func TestMutatorProfileScope(t *testing.T) {
	port := intstr.FromInt32(9092)
	prof := &netguardv1alpha1.NetworkProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "kannika-armory"},
		Spec: netguardv1alpha1.NetworkProfileSpec{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kannika"}},
			Egress:            []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &port}}}},
		},
	}
	s, _ := testServer(t, prof)
	s.injector.namespaces = &fakeNamespaces{labels: map[string]map[string]string{
		"team":    {"kubernetes.io/metadata.name": "team"},
		"kannika": {"kubernetes.io/metadata.name": "kannika"},
	}}
	s.namespaces = &fakeNamespaces{labels: map[string]map[string]string{"team": {}, "kannika": {}}}
	m := &workloadMutator{s: s}
	ann := map[string]string{rules.AnnotationProfiles: prof.Name}
	resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, webhooktest.Deployment("team", "thief", ann), nil, false))
	if resp.Allowed || !strings.Contains(resp.Result.Message, `NetworkProfile "kannika-armory" is not offered to namespace "team"`) {
		t.Errorf("out of scope: want a denial naming the profile, got %+v", resp.AdmissionResponse)
	}
	if resp := m.Handle(context.Background(), workloadRequest(t, admissionv1.Create, webhooktest.Deployment("kannika", "armory", ann), nil, false)); !resp.Allowed || len(resp.Patches) == 0 {
		t.Errorf("in scope: want an injected workload, got %+v", resp.AdmissionResponse)
	}
}

func TestReservedPolicyNames(t *testing.T) {
	v, _ := newValidator(testConfig(), map[string]map[string]string{"team": {rules.LabelEnforce: "privileged"}})
	plain := func(name string) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team"}}
	}
	for _, name := range []string{"netguard.web.to.api", "netguard.x", rules.AllowDNSPolicyName} {
		resp, _ := v.handle(context.Background(), request(t, admissionv1.Create, "team", plain(name), nil, "alice"))
		if resp.Allowed || !strings.Contains(resp.Result.Message, "is reserved for the policies netguard generates") {
			t.Errorf("create %s as a tenant in a privileged namespace: want netguard's denial, got %+v", name, resp.AdmissionResponse)
		}
	}
	if resp, _ := v.handle(context.Background(), request(t, admissionv1.Create, "team", plain("netguard-allow-dns-2"), nil, "alice")); !resp.Allowed {
		t.Errorf("netguard-allow-dns-2 is not reserved: %+v", resp.AdmissionResponse)
	}
	// A planted one may be deleted by anyone who may delete policies: it
	// only allows. The default-deny may not.
	if resp, _ := v.handle(context.Background(), request(t, admissionv1.Delete, "team", nil, plain("netguard.web.to.api"), "alice")); !resp.Allowed {
		t.Errorf("delete a planted policy: %+v", resp.AdmissionResponse)
	}
	if resp, _ := v.handle(context.Background(), request(t, admissionv1.Delete, "team", nil, plain(rules.DefaultDenyPolicyName), "alice")); resp.Allowed {
		t.Errorf("delete an unlabelled default-deny: allowed")
	}
	// netguard's own (labelled) one may not.
	own := withLabels(plain("netguard.web.to.api"), rules.LabelManagedBy, rules.ManagedByValue)
	if resp, _ := v.handle(context.Background(), request(t, admissionv1.Delete, "team", nil, own, "alice")); resp.Allowed {
		t.Errorf("delete netguard's policy: allowed")
	}
}
