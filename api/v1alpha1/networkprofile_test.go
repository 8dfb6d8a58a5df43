package v1alpha1

import (
	"encoding/json"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/randfill"
)

func fullProfile() *NetworkProfile {
	udp := corev1.ProtocolUDP
	p53, p9000 := intstr.FromInt32(53), intstr.FromString("metrics")
	end := int32(60)
	return &NetworkProfile{
		TypeMeta:   metav1.TypeMeta{APIVersion: GroupVersion.String(), Kind: "NetworkProfile"},
		ObjectMeta: metav1.ObjectMeta{Name: "everything", Labels: map[string]string{"team": "platform"}},
		Spec: NetworkProfileSpec{
			Description: "uses every field",
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{
					{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "monitoring"}},
						PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"prometheus"}}}}},
					{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/8", Except: []string{"10.1.0.0/16"}}},
				},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &p9000}},
			}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "192.0.2.0/24"}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &udp, Port: &p53, EndPort: &end}},
			}},
		},
	}
}

func TestScheme(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[string]runtime.Object{"NetworkProfile": &NetworkProfile{}, "NetworkProfileList": &NetworkProfileList{}} {
		obj, err := s.New(GroupVersion.WithKind(kind))
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		if reflect.TypeOf(obj) != reflect.TypeOf(want) {
			t.Errorf("%s: got %T", kind, obj)
		}
	}
	if GroupVersion.String() != "netguard.io/v1alpha1" {
		t.Errorf("group version %s", GroupVersion)
	}
}

// The generated deepcopy copies every field and shares no memory.
func TestDeepCopy(t *testing.T) {
	f := randfill.NewWithSeed(1).NilChance(0).NumElements(1, 3).Funcs(
		func(q *intstr.IntOrString, c randfill.Continue) {
			*q = intstr.FromInt32(c.Int31())
		},
	)
	for i := 0; i < 50; i++ {
		var in NetworkProfileList
		f.Fill(&in)
		out := in.DeepCopyObject().(*NetworkProfileList)
		if !reflect.DeepEqual(&in, out) {
			t.Fatalf("copy differs")
		}
		// Change the copy everywhere a pointer or slice could be shared.
		for j := range out.Items {
			sp := &out.Items[j].Spec
			for k := range sp.Ingress {
				for l := range sp.Ingress[k].From {
					sp.Ingress[k].From[l].IPBlock.CIDR += "x"
					sp.Ingress[k].From[l].PodSelector.MatchLabels["changed"] = "yes"
				}
				for l := range sp.Ingress[k].Ports {
					*sp.Ingress[k].Ports[l].EndPort++
				}
			}
			for k := range sp.Egress {
				for l := range sp.Egress[k].To {
					sp.Egress[k].To[l].NamespaceSelector.MatchExpressions[0].Values[0] += "x"
				}
			}
			out.Items[j].Labels["changed"] = "yes"
		}
		if reflect.DeepEqual(&in, out) {
			t.Fatal("changing the copy changed the original")
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	in := fullProfile()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out NetworkProfile
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, &out) {
		t.Errorf("round trip changed the profile:\n%s", b)
	}
}
