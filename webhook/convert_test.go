package webhook

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
)

func TestProfileToRules(t *testing.T) {
	tcp := corev1.ProtocolTCP
	p443 := intstr.FromInt32(443)
	in := &netguardv1alpha1.NetworkProfile{
		ObjectMeta: metav1.ObjectMeta{Name: "everything"},
		Spec: netguardv1alpha1.NetworkProfileSpec{
			Description:       "uses every field",
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "web"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "lb"}}}},
			}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "192.0.2.0/24"}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &p443}},
			}},
		},
	}
	got := ProfileToRules(in)
	want := rules.Profile{Name: "everything", Description: "uses every field", NamespaceSelector: in.Spec.NamespaceSelector, Ingress: in.Spec.Ingress, Egress: in.Spec.Egress}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
	got.Egress[0].To[0].IPBlock.CIDR = "0.0.0.0/0"
	got.NamespaceSelector.MatchLabels["tier"] = "db"
	if in.Spec.Egress[0].To[0].IPBlock.CIDR != "192.0.2.0/24" || in.Spec.NamespaceSelector.MatchLabels["tier"] != "web" {
		t.Error("the rules profile shares memory with the API object")
	}
	if p := ProfileToRules(&netguardv1alpha1.NetworkProfile{ObjectMeta: metav1.ObjectMeta{Name: "empty"}}); !reflect.DeepEqual(p, rules.Profile{Name: "empty"}) {
		t.Errorf("empty: %+v", p)
	}
}

func TestLocalConfigToRules(t *testing.T) {
	p8080, end := intstr.FromInt32(8080), int32(8090)
	created := metav1.Now()
	in := &netguardv1alpha1.LocalNetworkConfig{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "platform", UID: types.UID("u1"), CreationTimestamp: created},
		Spec: netguardv1alpha1.LocalNetworkConfigSpec{Components: map[string]netguardv1alpha1.LocalComponent{
			"api": {
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
				DependsOn: []netguardv1alpha1.LocalDependency{
					{Component: "db", Namespace: "data", Port: &p8080, Protocol: "TCP"},
					{NetworkProfile: "dns"},
				},
				ExposeTo: []netguardv1alpha1.LocalExposure{{
					NamespaceSelector: metav1.LabelSelector{MatchLabels: map[string]string{"team": "web"}},
					Ports:             []netguardv1alpha1.LocalExposedPort{{Port: p8080, EndPort: &end, Protocol: "TCP"}},
				}},
			},
		}},
	}
	nsLabels := map[string]string{"team": "shop"}
	got := LocalConfigToRules(in, nsLabels)
	want := rules.LocalConfig{
		Namespace: "shop", Name: "platform", UID: "u1", Created: created.Time, NamespaceLabels: nsLabels,
		Components: []rules.LocalComponent{{
			Name:        "api",
			PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			DependsOn: []rules.LocalDependency{
				{Component: "db", Namespace: "data", Port: &p8080, Protocol: "TCP"},
				{NetworkProfile: "dns"},
			},
			ExposeTo: []rules.LocalExposure{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "web"}},
				Ports:             []rules.LocalExposedPort{{Port: p8080, EndPort: &end, Protocol: "TCP"}},
			}},
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	*got.Components[0].DependsOn[0].Port = intstr.FromInt32(1)
	*got.Components[0].ExposeTo[0].Ports[0].EndPort = 1
	got.Components[0].PodSelector.MatchLabels["app"] = "other"
	c := in.Spec.Components["api"]
	if c.DependsOn[0].Port.IntValue() != 8080 || *c.ExposeTo[0].Ports[0].EndPort != 8090 || c.PodSelector.MatchLabels["app"] != "api" {
		t.Error("the rules LocalConfig shares memory with the API object")
	}
}
