package main

import (
	"strings"
	"testing"
)

// armoryFiles is Kannika Armory over two namespaces by consent, plus a third
// namespace that declares the dependency without being exposed to.
const armoryFiles = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: event-gateway
  namespace: kannika-system
  annotations:
    netguard.io/expose-to: kubernetes.io/metadata.name=kannika-data:8082
spec:
  selector: {matchLabels: {app: gw}}
  template:
    metadata: {labels: {app: gw}}
    spec: {containers: [{name: gw, image: gw}]}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: kannika-system
  annotations:
    netguard.io/depends-on: kannika-data/backup:9000
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: api}]}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: backup
  namespace: kannika-data
  annotations:
    netguard.io/depends-on: kannika-system/event-gateway:8082
    netguard.io/expose-to: kubernetes.io/metadata.name=kannika-system:9000
spec:
  selector: {matchLabels: {app: backup}}
  template:
    metadata: {labels: {app: backup}}
    spec: {containers: [{name: backup, image: backup}]}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: backup
  namespace: elsewhere
  annotations:
    netguard.io/depends-on: kannika-system/event-gateway:8082
spec:
  selector: {matchLabels: {app: backup}}
  template:
    metadata: {labels: {app: backup}}
    spec: {containers: [{name: backup, image: backup}]}
`

func TestConsentOnFiles(t *testing.T) {
	out, errOut, code := genRun(armoryFiles, "generate", "-f", "-")
	if code != 0 {
		t.Fatalf("generate: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		"name: netguard.event-gateway.cross-namespace-ingress\n  namespace: kannika-system",
		"name: netguard.backup.cross-namespace-egress\n  namespace: kannika-data",
		"name: netguard.backup.cross-namespace-ingress\n  namespace: kannika-data",
		"name: netguard.api.cross-namespace-egress\n  namespace: kannika-system",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("generate output lacks %q", want)
		}
	}
	if strings.Contains(out, "namespace: elsewhere\n") && strings.Contains(out, "cross-namespace-egress\n  namespace: elsewhere") {
		t.Error("the namespace that was not exposed to got an egress policy")
	}
	if !strings.Contains(errOut, `warning: netguard.io/depends-on: "kannika-system/event-gateway:8082" is one-sided and opens nothing: Deployment/event-gateway in namespace "kannika-system" does not expose port 8082 to namespace "elsewhere"`) {
		t.Errorf("generate warnings:\n%s", errOut)
	}

	for _, c := range []struct {
		from, to, port string
		code           int
	}{
		{"kannika-data/backup", "kannika-system/event-gateway", "8082", 0},
		{"kannika-system/api", "kannika-data/backup", "9000", 0},
		{"elsewhere/backup", "kannika-system/event-gateway", "8082", 1},
		{"kannika-data/backup", "kannika-system/event-gateway", "9000", 1},
		{"kannika-system/event-gateway", "kannika-data/backup", "8082", 1},
	} {
		out, errOut, code := genRun(armoryFiles, "reach", "-f", "-", "--from", c.from, "--to", c.to, "--port", c.port)
		if code != c.code {
			t.Errorf("reach %s -> %s on %s: exit %d, want %d\n%s%s", c.from, c.to, c.port, code, c.code, out, errOut)
		}
	}
}

// armoryLocalFiles: the backup pods are made by the platform, so a
// LocalNetworkConfig of kannika-data selects them and declares both sides
// of its consent; kannika-system's api is a LocalNetworkConfig component
// too, and the event gateway an annotated Deployment.
const armoryLocalFiles = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: event-gateway
  namespace: kannika-system
  annotations:
    netguard.io/expose-to: kubernetes.io/metadata.name=kannika-data:8082
spec:
  selector: {matchLabels: {app: gw}}
  template:
    metadata: {labels: {app: gw}}
    spec: {containers: [{name: gw, image: gw}]}
---
apiVersion: netguard.io/v1alpha1
kind: LocalNetworkConfig
metadata: {name: armory, namespace: kannika-system}
spec:
  components:
    api:
      podSelector: {matchLabels: {app.kubernetes.io/name: kannika-api}}
      dependsOn:
      - {namespace: kannika-data, component: backup, port: 9000}
---
apiVersion: netguard.io/v1alpha1
kind: LocalNetworkConfig
metadata: {name: armory, namespace: kannika-data}
spec:
  components:
    backup:
      podSelector: {matchLabels: {app.kubernetes.io/part-of: kannika-backup}}
      dependsOn:
      - {namespace: kannika-system, component: event-gateway, port: 8082}
      exposeTo:
      - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kannika-system}}
        ports: [{port: 9000}]
---
apiVersion: v1
kind: Pod
metadata:
  name: api-0
  namespace: kannika-system
  labels: {app.kubernetes.io/name: kannika-api}
spec: {containers: [{name: api, image: api}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: backup-run-1
  namespace: kannika-data
  labels: {app.kubernetes.io/part-of: kannika-backup}
spec: {containers: [{name: backup, image: backup, ports: [{containerPort: 9000}]}]}
---
apiVersion: v1
kind: Pod
metadata:
  name: other
  namespace: kannika-data
  labels: {app: other}
spec: {containers: [{name: other, image: other}]}
`

func TestLocalConsentOnFiles(t *testing.T) {
	out, errOut, code := genRun(armoryLocalFiles, "generate", "-f", "-")
	if code != 0 {
		t.Fatalf("generate: exit %d\n%s", code, errOut)
	}
	for _, want := range []string{
		"name: netguard.event-gateway.cross-namespace-ingress\n  namespace: kannika-system",
		"name: netguard.backup.cross-namespace-egress\n  namespace: kannika-data",
		"name: netguard.backup.cross-namespace-ingress\n  namespace: kannika-data",
		"name: netguard.api.cross-namespace-egress\n  namespace: kannika-system",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("generate output lacks %q\n%s", want, out)
		}
	}
	if strings.Contains(errOut, "one-sided") {
		t.Errorf("agreed consent warned:\n%s", errOut)
	}
	for _, c := range []struct {
		from, to, port string
		code           int
	}{
		{"kannika-data/backup-run-1", "kannika-system/event-gateway", "8082", 0},
		{"kannika-system/api-0", "kannika-data/backup-run-1", "9000", 0},
		{"kannika-data/other", "kannika-system/event-gateway", "8082", 1},
		{"kannika-system/event-gateway", "kannika-data/backup-run-1", "9000", 1},
		{"kannika-data/backup-run-1", "kannika-system/api-0", "9000", 1},
	} {
		out, errOut, code := genRun(armoryLocalFiles, "reach", "-f", "-", "--from", c.from, "--to", c.to, "--port", c.port)
		if code != c.code {
			t.Errorf("reach %s -> %s on %s: exit %d, want %d\n%s%s", c.from, c.to, c.port, code, c.code, out, errOut)
		}
	}
}
