// Package load sends AdmissionReviews to a webhook server over HTTPS and
// HTTP/2, as the API server does, and measures latency and throughput. It
// aims at loopback addresses only and every run is bounded in requests and
// time. `make bench` (hack/bench) and the loadgen command use it.
package load

import (
	"encoding/json"
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook"
)

// Request is one prepared AdmissionReview.
type Request struct {
	// Kind labels the request in results: "np-allowed", "np-denied",
	// "deploy-mutate", "deploy-validate".
	Kind string
	Path string
	Body []byte
	// UID is the request UID the response must echo.
	UID string
	// WantAllowed is netguard's expected verdict; a floor allows everything.
	WantAllowed bool
}

// Corpus is a mix of requests, sent in order and round robin.
type Corpus []Request

// Mix says how many of every 10 requests are of each kind.
type Mix struct {
	NetworkPolicyAllowed, NetworkPolicyDenied, DeploymentMutate, DeploymentValidate int
}

// DefaultMix is 4 allowed and 2 denied NetworkPolicies, 3 annotated
// Deployments to the mutating webhook and 1 to the validating (applier)
// webhook, all Deployments with dryRun=true.
var DefaultMix = Mix{NetworkPolicyAllowed: 4, NetworkPolicyDenied: 2, DeploymentMutate: 3, DeploymentValidate: 1}

// ProfileNames are the NetworkProfiles the corpus's Deployments reference;
// Profiles returns them for the cluster.
var ProfileNames = []string{"node-local-dns", "prometheus-scrape", "payments-api"}

// Profiles are three NetworkProfiles a platform team would offer.
func Profiles() []*netguardv1alpha1.NetworkProfile {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	p53, metrics, p443 := intstr.FromInt32(53), intstr.FromString("metrics"), intstr.FromInt32(443)
	return []*netguardv1alpha1.NetworkProfile{
		{ObjectMeta: metav1.ObjectMeta{Name: "node-local-dns"}, Spec: netguardv1alpha1.NetworkProfileSpec{Egress: []networkingv1.NetworkPolicyEgressRule{{
			To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "169.254.20.10/32"}}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &p53}, {Protocol: &tcp, Port: &p53}},
		}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "prometheus-scrape"}, Spec: netguardv1alpha1.NetworkProfileSpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{
			From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: labels(corev1.LabelMetadataName, "monitoring"), PodSelector: labels("app.kubernetes.io/name", "prometheus")}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &metrics}},
		}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "payments-api"}, Spec: netguardv1alpha1.NetworkProfileSpec{Egress: []networkingv1.NetworkPolicyEgressRule{{
			To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: labels(corev1.LabelMetadataName, "payments"), PodSelector: labels("app", "payments-api")}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p443}},
		}}}},
	}
}

func labels(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

// AllowedPolicy is a NetworkPolicy a team writes that passes restricted: a
// server, two client components and its database, on named and numbered ports.
func AllowedPolicy(namespace, name string, i int) *networkingv1.NetworkPolicy {
	tcp := corev1.ProtocolTCP
	web, metrics, db := intstr.FromInt32(int32(8080+i%10)), intstr.FromString("metrics"), intstr.FromInt32(5432)
	return &networkingv1.NetworkPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app.kubernetes.io/part-of": "shop"}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: *labels("app", fmt.Sprintf("api-%d", i%50)),
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: labels("app", "web")}, {PodSelector: labels("app", "batch")}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &web}, {Protocol: &tcp, Port: &metrics}},
			}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{PodSelector: labels("app", "db")}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &db}},
			}},
		},
	}
}

// MixedPolicy is the mixed corpus of issue 18: of every 10 policies, 6
// (i%10 in 0..5) are AllowedPolicy, a shape netguard's
// ValidatingAdmissionPolicies decide entirely in CEL
// (rules.CELShapeExpression), and 4 are shapes CEL leaves to netguard's
// webhook, each allowed at baseline and by a VAP with the baseline checks CEL
// can express (every rule names its peers, no ipBlock, a namespaceSelector
// only when it pins kubernetes.io/metadata.name to the own namespace):
//
//   - i%10 == 6: an ingress peer with a namespaceSelector pinning
//     kubernetes.io/metadata.name to namespace, plus a podSelector;
//   - i%10 == 7: an ingress peer whose podSelector uses matchExpressions
//     (app In [web, batch]);
//   - i%10 == 8: an ingress port range 8000-8010 (endPort; narrow, far below
//     the wide port range the checks report);
//   - i%10 == 9: 16 slots, over rules.CELMaxSlots: 8 peers and 6 ports in
//     the ingress rule, plus the egress rule's 2.
//
// Every variant keeps Ingress[0].Ports[0] a numbered TCP port, with endPort
// only in variant 8.
func MixedPolicy(namespace, name string, i int) *networkingv1.NetworkPolicy {
	np := AllowedPolicy(namespace, name, i)
	in := &np.Spec.Ingress[0]
	switch i % 10 {
	case 6:
		in.From[1] = networkingv1.NetworkPolicyPeer{NamespaceSelector: labels(corev1.LabelMetadataName, namespace), PodSelector: labels("app", "batch")}
	case 7:
		in.From = []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"web", "batch"}},
		}}}}
	case 8:
		start, end := intstr.FromInt32(8000), int32(8010)
		in.Ports[0].Port, in.Ports[0].EndPort = &start, &end
	case 9:
		tcp := corev1.ProtocolTCP
		in.From, in.Ports = nil, nil
		for k := range 8 {
			in.From = append(in.From, networkingv1.NetworkPolicyPeer{PodSelector: labels("app", fmt.Sprintf("client-%d", k))})
		}
		for k := range 6 {
			p := intstr.FromInt32(int32(7000 + k))
			in.Ports = append(in.Ports, networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: &p})
		}
	}
	return np
}

// UpdatedPolicy is the UPDATE the benchmarks send for a policy of
// AllowedPolicy or MixedPolicy: a copy of np with Ingress[0].Ports[0] moved
// to port 9000+i%100, and its endPort, if any, moved along to keep the range
// 10 ports wide. The copy keeps np's shape: decided in CEL or not, allowed at
// baseline.
func UpdatedPolicy(np *networkingv1.NetworkPolicy, i int) *networkingv1.NetworkPolicy {
	np = np.DeepCopy()
	e := &np.Spec.Ingress[0].Ports[0]
	p := intstr.FromInt32(9000 + int32(i%100))
	e.Port = &p
	if e.EndPort != nil {
		end := p.IntVal + 10
		e.EndPort = &end
	}
	return np
}

// DeniedPolicy fails baseline in one of three ways: ingress from anywhere,
// egress to an ipBlock, or ingress from every namespace.
func DeniedPolicy(namespace, name string, i int) *networkingv1.NetworkPolicy {
	np := AllowedPolicy(namespace, name, i)
	switch i % 3 {
	case 0:
		np.Spec.Ingress[0].From = nil
	case 1:
		np.Spec.Egress[0].To = []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8"}}}}
	default:
		np.Spec.Ingress[0].From = append(np.Spec.Ingress[0].From, networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{}})
	}
	return np
}

// AnnotatedDeployment is a Deployment with deps dependencies (up to 10) and
// the given profiles, as kubectl sends it.
func AnnotatedDeployment(namespace, name string, deps int, profiles []string) *appsv1.Deployment {
	all := []string{"cart:8080", "catalog:8080", "users:8443", "orders:8080", "search:9200", "cache:6379", "db:5432", "queue:5672", "media:http", "stream:10000-10100/UDP"}
	d := PlainDeployment(namespace, name)
	d.Annotations = map[string]string{rules.AnnotationDependsOn: joinSpace(all[:min(deps, len(all))])}
	if len(profiles) > 0 {
		d.Annotations[rules.AnnotationProfiles] = joinSpace(profiles)
	}
	return d
}

// PlainDeployment is the same Deployment without netguard annotations.
func PlainDeployment(namespace, name string) *appsv1.Deployment {
	replicas := int32(2)
	sel := map[string]string{"app": name}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: sel},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: sel},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:  "app",
					Image: "registry.example/" + name + ":1.4.2",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
					Env:   []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}, {Name: "DB_HOST", Value: "db"}},
				}}},
			},
		},
	}
}

func joinSpace(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

// NewCorpus prepares n requests (at least one of each kind in mix) spread
// over namespaces, which must exist in the cluster netguard watches, as must
// ProfileNames.
func NewCorpus(namespaces []string, n int, mix Mix) (Corpus, error) {
	if len(namespaces) == 0 {
		return nil, fmt.Errorf("no namespaces for the corpus")
	}
	var kinds []string
	for _, k := range []struct {
		kind string
		n    int
	}{{"np-allowed", mix.NetworkPolicyAllowed}, {"np-denied", mix.NetworkPolicyDenied}, {"deploy-mutate", mix.DeploymentMutate}, {"deploy-validate", mix.DeploymentValidate}} {
		for range k.n {
			kinds = append(kinds, k.kind)
		}
	}
	if len(kinds) == 0 {
		return nil, fmt.Errorf("empty mix")
	}
	var out Corpus
	for i := range max(n, len(kinds)) {
		ns := namespaces[i%len(namespaces)]
		kind := kinds[i%len(kinds)]
		uid := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		user := authenticationv1.UserInfo{Username: fmt.Sprintf("dev-%d", i%7), Groups: []string{"developers", "system:authenticated"}}
		var (
			req  Request
			obj  runtime.Object
			areq = admissionv1.AdmissionRequest{UID: types.UID(uid), Namespace: ns, Operation: admissionv1.Create, UserInfo: user}
		)
		switch kind {
		case "np-allowed", "np-denied":
			name := fmt.Sprintf("np-%d", i)
			if kind == "np-allowed" {
				obj = AllowedPolicy(ns, name, i)
			} else {
				obj = DeniedPolicy(ns, name, i)
			}
			areq.Name = name
			areq.Kind = metav1.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}
			areq.Resource = metav1.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"}
			req = Request{Kind: kind, Path: webhook.PathValidateNetworkPolicy, WantAllowed: kind == "np-allowed"}
		default:
			name := fmt.Sprintf("app-%d", i)
			obj = AnnotatedDeployment(ns, name, 10, ProfileNames)
			dry := true
			areq.Name = name
			areq.DryRun = &dry
			areq.Kind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
			areq.Resource = metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
			req = Request{Kind: kind, Path: webhook.PathMutateWorkload, WantAllowed: true}
			if kind == "deploy-validate" {
				req.Path = webhook.PathValidateWorkload
			}
		}
		areq.RequestKind, areq.RequestResource = &areq.Kind, &areq.Resource
		raw, err := json.Marshal(obj)
		if err != nil {
			return nil, err
		}
		areq.Object = runtime.RawExtension{Raw: raw}
		body, err := json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request:  &areq,
		})
		if err != nil {
			return nil, err
		}
		req.Body, req.UID = body, uid
		out = append(out, req)
	}
	return out, nil
}
