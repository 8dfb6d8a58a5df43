package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// genShop is a small annotated application: web calls api, api calls db,
// web uses a profile.
const genShop = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {team: shop}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  annotations:
    netguard.io/depends-on: "api:8080"
    netguard.io/profiles: egress-payments
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: web, ports: [{name: http, containerPort: 80}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: api
  namespace: shop
  annotations:
    netguard.io/depends-on: db:postgres
spec:
  selector: {matchLabels: {app: api}}
  serviceName: api
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
      - {name: api, image: api, ports: [{name: http, containerPort: 8080}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: postgres
  namespace: shop
  annotations:
    netguard.io/component: db
spec:
  selector: {matchLabels: {app: db}}
  serviceName: db
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - {name: db, image: postgres, ports: [{name: postgres, containerPort: 5432}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated, namespace: shop}
`

const genProfiles = `apiVersion: netguard.io/v1alpha1
kind: NetworkProfile
metadata:
  name: egress-payments
spec:
  egress:
  - to: [{ipBlock: {cidr: 192.0.2.0/24}}]
    ports: [{port: 443}]
`

const genShopWant = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  labels:
    app.kubernetes.io/managed-by: netguard
  name: netguard-allow-dns
  namespace: shop
spec:
  egress:
  - ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
    to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
      podSelector:
        matchLabels:
          k8s-app: kube-dns
  podSelector: {}
  policyTypes:
  - Egress
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  labels:
    app.kubernetes.io/managed-by: netguard
  name: netguard-default-deny
  namespace: shop
spec:
  podSelector: {}
  policyTypes:
  - Ingress
  - Egress
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  annotations:
    netguard.io/workload: StatefulSet/api
  labels:
    app.kubernetes.io/managed-by: netguard
    netguard.io/component: api
  name: netguard.api.depends-on
  namespace: shop
spec:
  egress:
  - ports:
    - port: postgres
      protocol: TCP
    to:
    - podSelector:
        matchLabels:
          netguard.io/component: db
  podSelector:
    matchLabels:
      netguard.io/component: api
  policyTypes:
  - Egress
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  annotations:
    netguard.io/workload: StatefulSet/api
  labels:
    app.kubernetes.io/managed-by: netguard
    netguard.io/component: api
  name: netguard.api.to.db
  namespace: shop
spec:
  ingress:
  - from:
    - podSelector:
        matchLabels:
          netguard.io/component: api
    ports:
    - port: postgres
      protocol: TCP
  podSelector:
    matchLabels:
      netguard.io/component: db
  policyTypes:
  - Ingress
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  annotations:
    netguard.io/workload: Deployment/web
  labels:
    app.kubernetes.io/managed-by: netguard
    netguard.io/component: web
  name: netguard.web.depends-on
  namespace: shop
spec:
  egress:
  - ports:
    - port: 8080
      protocol: TCP
    to:
    - podSelector:
        matchLabels:
          netguard.io/component: api
  podSelector:
    matchLabels:
      netguard.io/component: web
  policyTypes:
  - Egress
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  annotations:
    netguard.io/workload: Deployment/web
  labels:
    app.kubernetes.io/managed-by: netguard
    netguard.io/component: web
  name: netguard.web.profile.egress-payments
  namespace: shop
spec:
  egress:
  - ports:
    - port: 443
    to:
    - ipBlock:
        cidr: 192.0.2.0/24
  podSelector:
    matchLabels:
      netguard.io/component: web
  policyTypes:
  - Egress
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  annotations:
    netguard.io/workload: Deployment/web
  labels:
    app.kubernetes.io/managed-by: netguard
    netguard.io/component: web
  name: netguard.web.to.api
  namespace: shop
spec:
  ingress:
  - from:
    - podSelector:
        matchLabels:
          netguard.io/component: web
    ports:
    - port: 8080
      protocol: TCP
  podSelector:
    matchLabels:
      netguard.io/component: api
  policyTypes:
  - Ingress
`

// genWrite writes files into a new temporary directory and returns it.
func genWrite(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// genRun runs the CLI with stdin and returns stdout, stderr and the exit code.
func genRun(stdin string, args ...string) (string, string, int) {
	var out, errOut bytes.Buffer
	code := run(args, ioStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	return out.String(), errOut.String(), code
}

func TestGenerateCommand(t *testing.T) {
	dir := genWrite(t, map[string]string{"shop.yaml": genShop, "profiles.yaml": genProfiles})
	out, errOut, code := genRun("", "generate", "-f", filepath.Join(dir, "shop.yaml"), "-f", filepath.Join(dir, "profiles.yaml"))
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out != genShopWant {
		t.Errorf("output:\n%s", out)
	}
	// A directory, profiles first, gives the same bytes.
	out2, _, code := genRun("", "generate", "-f", dir)
	if code != 0 || out2 != out {
		t.Errorf("directory input gave a different output (exit %d)", code)
	}
	// Stdin, with the documents in another order.
	docs := strings.Split(genShop, "---\n")
	for i, j := 0, len(docs)-1; i < j; i, j = i+1, j-1 {
		docs[i], docs[j] = docs[j], docs[i]
	}
	out3, _, code := genRun(strings.Join(docs, "---\n")+"---\n"+genProfiles, "generate", "-f", "-")
	if code != 0 || out3 != out {
		t.Errorf("reordered stdin gave a different output (exit %d)", code)
	}
}

func TestGenerateWithoutBaseline(t *testing.T) {
	out, _, code := genRun(genShop+"---\n"+genProfiles, "generate", "-f", "-", "--baseline=false", "--dns-namespace", "dns")
	if code != 0 || strings.Contains(out, "netguard-default-deny") || strings.Contains(out, "netguard-allow-dns") || !strings.Contains(out, "name: netguard.web.to.api") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	out, _, _ = genRun(genShop+"---\n"+genProfiles, "generate", "-f", "-", "--dns-namespace", "dns", "--dns-pod-selector", "app in (unbound)")
	if !strings.Contains(out, "kubernetes.io/metadata.name: dns") || !strings.Contains(out, "- unbound") {
		t.Errorf("DNS options not used:\n%s", out)
	}
}

func TestGenerateErrors(t *testing.T) {
	badWeb := strings.Replace(genShop, `"api:8080"`, `"api:80a"`, 1)
	tests := []struct {
		name    string
		stdin   string
		args    []string
		code    int
		stderr  []string
		nothing bool
	}{
		{name: "annotation error names file, document and field", stdin: badWeb + "---\n" + genProfiles, args: []string{"-f", "-"}, code: 1, nothing: true,
			stderr: []string{`netguard: <stdin>#2: Deployment "web": metadata.annotations[netguard.io/depends-on]: Invalid value: "api:80a": port must be 1-65535`}},
		{name: "unknown profile", stdin: genShop, args: []string{"-f", "-"}, code: 1, nothing: true,
			stderr: []string{`netguard: <stdin>#2: Deployment "web": metadata.annotations[netguard.io/profiles]: Not found: "egress-payments": NetworkProfile "egress-payments" does not exist; NetworkProfiles are cluster-scoped and owned by the platform team: fix the name, or ask the platform team to create it`}},
		{name: "two workloads, one component", stdin: genShop + "---\n" + genProfiles + "---\n" + strings.Replace(strings.Replace(strings.SplitN(genShop, "---\n", 5)[3], "name: postgres", "name: postgres-replica", 1), "serviceName: db", "serviceName: db2", 1), args: []string{"-f", "-"}, code: 1, nothing: true,
			stderr: []string{`netguard: <stdin>#7: StatefulSet "postgres-replica": metadata.annotations[netguard.io/component]: Duplicate value: "db": component "db" is already declared by StatefulSet/postgres in namespace "shop"`}},
		{name: "profile not offered to the namespace", stdin: genShop + "---\n" + strings.Replace(genProfiles, "spec:\n", "spec:\n  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: elsewhere}}\n", 1), args: []string{"-f", "-"}, code: 1, nothing: true,
			stderr: []string{`netguard: <stdin>#2: Deployment "web": metadata.annotations[netguard.io/profiles]: Forbidden: NetworkProfile "egress-payments" is not offered to namespace "shop"`}},
		{name: "profile offered by a label of a Namespace in the input", stdin: genShop + "---\n" + strings.Replace(genProfiles, "spec:\n", "spec:\n  namespaceSelector: {matchLabels: {team: shop}}\n", 1), args: []string{"-f", "-"}, code: 0},
		{name: "warning only", stdin: strings.Replace(genShop, `"api:8080"`, `"api:8080 ghost:1"`, 1) + "---\n" + genProfiles, args: []string{"-f", "-"}, code: 0,
			stderr: []string{`netguard: <stdin>#2: Deployment "web": warning: netguard.io/depends-on: no workload in namespace "shop" declares component "ghost", so "ghost:1" reaches no pods`}},
		{name: "bad document", stdin: "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\nspec: {bogus: 1}\n", args: []string{"-f", "-"}, code: 2, nothing: true,
			stderr: []string{"netguard: <stdin>#1:"}},
		{name: "missing file", args: []string{"-f", "/nonexistent/netguard.yaml"}, code: 2, nothing: true, stderr: []string{"netguard: /nonexistent/netguard.yaml"}},
		{name: "no input", args: nil, code: 2, nothing: true, stderr: []string{"netguard: no input: pass -f FILE"}},
		{name: "duplicate profile", stdin: genShop + "---\n" + genProfiles + "---\n" + genProfiles, args: []string{"-f", "-"}, code: 2, nothing: true,
			stderr: []string{`netguard: <stdin>#7: NetworkProfile "egress-payments" is already defined in <stdin>#6`}},
		{name: "bad DNS selector", stdin: genShop, args: []string{"-f", "-", "--dns-pod-selector", "a in"}, code: 2, nothing: true, stderr: []string{`netguard: --dns-pod-selector "a in"`}},
		{name: "nothing annotated", stdin: "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n", args: []string{"-f", "-"}, code: 0, nothing: true,
			stderr: []string{"netguard: no annotated workloads in the input; nothing to generate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := genRun(tt.stdin, append([]string{"generate"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errOut)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut)
				}
			}
			if tt.nothing && out != "" {
				t.Errorf("stdout not empty:\n%s", out)
			}
		})
	}
}
