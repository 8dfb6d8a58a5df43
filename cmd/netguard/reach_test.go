package main

import (
	"strings"
	"testing"
)

// reachExtra adds a pod, a monitoring namespace and a handwritten policy to
// the shop of generate_test.go.
const reachExtra = `apiVersion: v1
kind: Namespace
metadata:
  name: monitoring
  labels: {purpose: monitoring}
---
apiVersion: v1
kind: Pod
metadata:
  name: prometheus-0
  namespace: monitoring
  labels: {app: prometheus}
spec:
  containers: [{name: p, image: p}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: metrics-from-monitoring
  namespace: shop
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {purpose: monitoring}}}]
    ports: [{port: http}]
---
apiVersion: v1
kind: Pod
metadata:
  name: api
  namespace: shop
  labels: {app: api}
spec:
  containers: [{name: api, image: api, ports: [{name: http, containerPort: 9999}]}]
`

func TestReachCommand(t *testing.T) {
	stdin := genShop + "---\n" + genProfiles + "---\n" + reachExtra
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{name: "dependency", args: []string{"--from", "shop/web", "--to", "shop/statefulset/api", "--port", "8080"}, code: 0,
			out: "shop/web -> shop/api on 8080/TCP: allowed: egress of shop/web allowed by shop/netguard.web.depends-on; ingress of shop/api allowed by shop/netguard.web.to.api\n"},
		{name: "reverse direction is denied", args: []string{"--from", "shop/statefulset/api", "--to", "shop/web", "--port", "80"}, code: 1,
			out: "shop/api -> shop/web on 80/TCP: denied: egress of shop/api is restricted by shop/netguard-allow-dns, shop/netguard-default-deny, shop/netguard.api.depends-on and none of them allows shop/web on 80/TCP; ingress of shop/web is restricted by shop/netguard-default-deny and none of them allows shop/api on 80/TCP\n"},
		{name: "a pod without the component label is not the component", args: []string{"--from", "shop/pod/api", "--to", "shop/postgres", "--port", "postgres"}, code: 1},
		{name: "named port of a workload", args: []string{"--from", "shop/statefulset/api", "--to", "shop/postgres", "--port", "postgres"}, code: 0,
			out: "shop/api -> shop/postgres on 5432/TCP: allowed: egress of shop/api allowed by shop/netguard.api.depends-on; ingress of shop/postgres allowed by shop/netguard.api.to.db\n"},
		{name: "other port", args: []string{"--from", "shop/statefulset/api", "--to", "shop/postgres", "--port", "5433"}, code: 1},
		{name: "UDP", args: []string{"--from", "shop/statefulset/api", "--to", "shop/postgres", "--port", "5432/udp"}, code: 1},
		{name: "profile to an IP", args: []string{"--from", "shop/web", "--to", "192.0.2.9", "--port", "443"}, code: 0,
			out: "shop/web -> 192.0.2.9 on 443/TCP: allowed: egress of shop/web allowed by shop/netguard.web.profile.egress-payments; ingress of 192.0.2.9 is outside the pod network\n"},
		{name: "profile IP outside the block", args: []string{"--from", "shop/web", "--to", "198.51.100.1", "--port", "443"}, code: 1},
		{name: "handwritten policy with namespace labels from the input", args: []string{"--from", "monitoring/prometheus-0", "--to", "shop/pod/api", "--port", "9999"}, code: 0,
			out: "monitoring/prometheus-0 -> shop/api on 9999/TCP: allowed: egress of monitoring/prometheus-0 is not restricted by any policy; ingress of shop/api allowed by shop/metrics-from-monitoring\n"},
		{name: "without generated policies", args: []string{"--from", "shop/statefulset/api", "--to", "shop/web", "--port", "80", "--generated=false"}, code: 0},
		{name: "DNS", args: []string{"--from", "shop/web", "--to", "shop/postgres", "--port", "53/udp"}, code: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := genRun(stdin, append([]string{"reach", "-f", "-"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			if tt.out != "" && out != tt.out {
				t.Errorf("got  %s\nwant %s", out, tt.out)
			}
		})
	}
}

func TestReachBadInput(t *testing.T) {
	stdin := genShop + "---\n" + genProfiles + "---\n" + reachExtra
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"--from", "shop/api", "--to", "shop/web", "--port", "80"}, `netguard: --from "shop/api" is ambiguous: write one of shop/pod/api, shop/statefulset/api`},
		{[]string{"--from", "shop/nobody", "--to", "shop/web", "--port", "80"}, `netguard: --from "shop/nobody": no pod or workload "nobody" in namespace "shop" in the input`},
		{[]string{"--from", "web", "--to", "shop/web", "--port", "80"}, `netguard: --from "web": write NAMESPACE/NAME, NAMESPACE/KIND/NAME or an IP address`},
		{[]string{"--from", "shop/web", "--to", "shop/postgres", "--port", "nosuch"}, `netguard: --port "nosuch": shop/postgres has no TCP container port named "nosuch"`},
		{[]string{"--from", "shop/web", "--to", "192.0.2.1", "--port", "https"}, `netguard: --port "https": a port name needs a pod as destination`},
		{[]string{"--from", "shop/web", "--to", "shop/postgres", "--port", "0"}, `netguard: --port "0": port "0" must be 1-65535`},
		{[]string{"--from", "shop/web", "--to", "shop/postgres", "--port", "53/icmp"}, `netguard: --port "53/icmp": protocol "icmp" must be TCP, UDP or SCTP`},
		{[]string{"--from", "shop/web"}, "netguard: --port, --to required (or use --matrix)"},
		{[]string{"--matrix", "--from", "shop/web"}, "netguard: --matrix shows every pair; leave out --from and --to"},
		{[]string{"--matrix", "--port", "http"}, `netguard: --port "http": port "http" must be 1-65535 (with --matrix, give a number)`},
	}
	for _, tt := range tests {
		_, errOut, code := genRun(stdin, append([]string{"reach", "-f", "-"}, tt.args...)...)
		if code != 2 || strings.TrimSpace(errOut) != tt.stderr {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant %s", tt.args, code, errOut, tt.stderr)
		}
	}
	// Annotation errors are bad input for reach.
	_, errOut, code := genRun(strings.Replace(genShop, `"api:8080"`, `"api:80a"`, 1), "reach", "-f", "-", "--from", "shop/web", "--to", "shop/postgres", "--port", "1")
	if code != 2 || !strings.Contains(errOut, `metadata.annotations[netguard.io/depends-on]: Invalid value: "api:80a"`) {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}

func TestReachMatrix(t *testing.T) {
	out, errOut, code := genRun(genShop+"---\n"+genProfiles, "reach", "-f", "-", "--matrix")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := `Allowed ports from each row to each column, tried on the destination's container ports (7 policies):

FROM \ TO          [1]       [2]       [3]
[1] shop/api       -         5432/TCP  -
[2] shop/postgres  -         -         -
[3] shop/web       8080/TCP  -         -
`
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	out, _, _ = genRun(genShop+"---\n"+genProfiles, "reach", "-f", "-", "--matrix", "--port", "8080")
	if !strings.HasPrefix(out, "Connectivity on 8080/TCP from each row to each column (7 policies):") || !strings.Contains(out, "[3] shop/web       8080/TCP  -    -\n") {
		t.Errorf("got\n%s", out)
	}
}
