package webhook

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// TestBypassCorpus runs every trick against the validator at baseline, or at
// the level its name starts with.
func TestBypassCorpus(t *testing.T) {
	v, _ := newValidator(testConfig(), map[string]map[string]string{
		"team":    nil,
		"managed": {rules.LabelEnforce: "managed"},
		"strict":  {rules.LabelEnforce: "restricted"},
	})
	for _, c := range webhooktest.BypassCorpus() {
		t.Run(c.Name, func(t *testing.T) {
			ns := "team"
			switch {
			case strings.HasPrefix(c.Name, "managed level"):
				ns = "managed"
			case strings.HasPrefix(c.Name, "restricted level"):
				ns = "strict"
			}
			obj := c.Obj
			if obj == "" {
				obj = `{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"p","namespace":"` + ns + `"},"spec":` + c.Spec + `}`
			}
			if !json.Valid([]byte(obj)) {
				t.Fatalf("the case is not JSON: %s", obj)
			}
			resp := v.Handle(context.Background(), admissionRequest(npRequest(ns, []byte(obj))))
			if c.Code == 0 {
				if !resp.Allowed {
					t.Fatalf("denied, want allowed: %+v", resp.Result)
				}
				opensNothing(t, ns, obj)
				return
			}
			if resp.Allowed || resp.Result == nil {
				t.Fatalf("allowed, want a %d denial naming %v", c.Code, c.Rules)
			}
			if resp.Result.Code != c.Code {
				t.Errorf("code %d, want %d: %s", resp.Result.Code, c.Code, resp.Result.Message)
			}
			msg := resp.Result.Message
			for _, id := range c.Rules {
				if !strings.Contains(msg, "["+id+"]") {
					t.Errorf("the denial does not name %s: %s", id, msg)
				}
			}
			t.Log(msg)
		})
	}
}

// opensNothing decodes the policy as the API server would and proves, with
// the connectivity evaluator, that on top of the namespace baseline it lets
// no connection cross the namespace boundary, in either direction, except the
// baseline's own DNS.
func opensNothing(t *testing.T, ns, obj string) {
	t.Helper()
	np, err := decodeNetworkPolicy("object", []byte(obj))
	if err != nil {
		t.Fatal(err)
	}
	np.Namespace = ns
	policies := append(rules.NamespaceBaseline(ns, rules.BaselineOptions{}), np)
	e, err := rules.NewEvaluator(policies)
	if err != nil {
		t.Fatal(err)
	}
	named := []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	inside := []rules.Endpoint{
		{Namespace: ns, Name: "backend", Labels: map[string]string{"app": "backend"}, Ports: named},
		{Namespace: ns, Name: "frontend", Labels: map[string]string{"app": "frontend"}, Ports: named},
	}
	outside := []rules.Endpoint{
		{Namespace: "prod", Name: "client", Labels: map[string]string{"app": "frontend"}, NamespaceLabels: map[string]string{"team": "a"}, Ports: named},
		{Namespace: "kube-system", Name: "coredns", Labels: map[string]string{"k8s-app": "kube-dns"}, Ports: named},
		rules.ExternalEndpoint("8.8.8.8"),
		rules.ExternalEndpoint("10.1.2.3"),
		rules.ExternalEndpoint("2001:db8::1"),
		rules.ExternalEndpoint("::ffff:8.8.8.8"),
	}
	ports := []rules.Port{{Number: 8080, Protocol: corev1.ProtocolTCP}, {Number: 443, Protocol: corev1.ProtocolTCP}, {Number: 53, Protocol: corev1.ProtocolUDP}}
	for _, in := range inside {
		for _, out := range outside {
			for _, p := range ports {
				for _, v := range []rules.Verdict{e.Reach(in, out, p), e.Reach(out, in, p)} {
					if !v.Allowed {
						continue
					}
					if v.To.Name == "coredns" && p.Number == 53 && v.Egress.AllowedBy[0].Name == rules.AllowDNSPolicyName {
						continue // the baseline's DNS allowance
					}
					t.Errorf("%s -> %s on %s is open: %s", v.From, v.To, p, v.Reason())
				}
			}
		}
	}
}

// The corpus summary in docs/security.md lists every case by name.
func TestBypassCorpusIsDocumented(t *testing.T) {
	doc := readDoc(t, "security.md")
	for _, c := range webhooktest.BypassCorpus() {
		if !strings.Contains(doc, c.Name) {
			t.Errorf("docs/security.md does not list the bypass %q", c.Name)
		}
	}
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
