package main

import (
	"strings"
	"testing"
)

// lncShop is an operator-managed application: unannotated Deployments with
// operator labels, selected by a LocalNetworkConfig.
const lncShop = `apiVersion: apps/v1
kind: Deployment
metadata: {name: frontend, namespace: flink}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: frontend}}
  template:
    metadata: {labels: {app.kubernetes.io/name: frontend}}
    spec: {containers: [{name: app, image: app}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: backend, namespace: flink}
spec:
  selector: {matchLabels: {app.kubernetes.io/name: backend}}
  template:
    metadata: {labels: {app.kubernetes.io/name: backend}}
    spec: {containers: [{name: app, image: app, ports: [{name: rpc, containerPort: 6123}]}]}
---
apiVersion: netguard.io/v1alpha1
kind: LocalNetworkConfig
metadata: {name: flink, namespace: flink}
spec:
  components:
    frontend:
      podSelector: {matchLabels: {app.kubernetes.io/name: frontend}}
      dependsOn:
        - {component: backend, port: rpc}
    backend:
      podSelector: {matchLabels: {app.kubernetes.io/name: backend}}
`

func TestLocalNetworkConfigFromFiles(t *testing.T) {
	out, errOut, code := genRun(lncShop, "generate", "-f", "-", "--baseline=false")
	if code != 0 {
		t.Fatalf("generate: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"name: netguard.frontend.depends-on", "name: netguard.frontend.to.backend", "netguard.io/workload: LocalNetworkConfig/flink"} {
		if !strings.Contains(out, want) {
			t.Errorf("generate output lacks %q:\n%s", want, out)
		}
	}
	reach := []struct {
		from, to, port string
		code           int
	}{
		{"flink/frontend", "flink/backend", "rpc", 0},
		{"flink/frontend", "flink/backend", "8080", 1},
		{"flink/backend", "flink/frontend", "6123", 1},
	}
	for _, r := range reach {
		_, errOut, code := genRun(lncShop, "reach", "-f", "-", "--from", r.from, "--to", r.to, "--port", r.port)
		if code != r.code {
			t.Errorf("reach %s -> %s:%s: exit %d, want %d\n%s", r.from, r.to, r.port, code, r.code, errOut)
		}
	}

	// A second LocalNetworkConfig whose component overlaps: generate fails,
	// check reports it with the audit's rule ID.
	bad := lncShop + `---
apiVersion: netguard.io/v1alpha1
kind: LocalNetworkConfig
metadata: {name: wide, namespace: flink}
spec:
  components:
    everything:
      podSelector: {matchExpressions: [{key: app.kubernetes.io/name, operator: Exists}]}
`
	_, errOut, code = genRun(bad, "generate", "-f", "-")
	if code != 1 || !strings.Contains(errOut, `LocalNetworkConfig "wide"`) || !strings.Contains(errOut, "overlaps the podSelector") {
		t.Errorf("generate with an overlap: exit %d\n%s", code, errOut)
	}
	out, _, code = genRun(bad, "check", "-f", "-", "-o", "json")
	if code != 1 || !strings.Contains(out, `"overlappingComponent"`) {
		t.Errorf("check with an overlap: exit %d\n%s", code, out)
	}
}
