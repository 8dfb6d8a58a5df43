package rules

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestGeneratedRecordRoundTrip(t *testing.T) {
	g := Generated{Digest: "abc", Policies: []*networkingv1.NetworkPolicy{
		{ObjectMeta: metav1.ObjectMeta{Name: "netguard.web.to.api"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "netguard.web.depends-on"}},
	}}
	s := g.Record().String()
	want := `{"digest":"abc","policies":["netguard.web.depends-on","netguard.web.to.api"]}`
	if s != want {
		t.Fatalf("record %s, want %s", s, want)
	}
	r, err := ParseGeneratedRecord(s)
	if err != nil || r.Digest != "abc" || len(r.Policies) != 2 {
		t.Fatalf("parse: %+v, %v", r, err)
	}
	if _, err := ParseGeneratedRecord("not json"); err == nil {
		t.Fatal("garbage parsed without error")
	}
}
