package main

import (
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// kindsShop has a Job, a CronJob and a bare Pod with netguard annotations,
// a Pod a ReplicaSet made (skipped: its template was handled), and a Pod an
// operator's custom resource owns (handled like a bare Pod).
const kindsShop = `apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  namespace: shop
  annotations: {netguard.io/depends-on: "db:5432"}
spec:
  template:
    metadata: {labels: {app: migrate}}
    spec:
      restartPolicy: Never
      containers: [{name: m, image: m}]
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: backup
  namespace: shop
  annotations: {netguard.io/depends-on: "db:5432"}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: backup}}
        spec:
          restartPolicy: Never
          containers: [{name: b, image: b}]
---
apiVersion: v1
kind: Pod
metadata:
  name: db
  namespace: shop
  labels: {app: db}
  annotations: {netguard.io/component: db}
spec:
  containers: [{name: db, image: postgres, ports: [{containerPort: 5432}]}]
---
apiVersion: v1
kind: Pod
metadata:
  name: web-abc12
  namespace: shop
  annotations: {netguard.io/depends-on: "db:5432"}
  ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-abc, uid: u1, controller: true}]
spec:
  containers: [{name: web, image: web}]
---
apiVersion: v1
kind: Pod
metadata:
  name: instance-manager
  namespace: shop
  annotations: {netguard.io/depends-on: "db:5432"}
  ownerReferences: [{apiVersion: longhorn.io/v1beta2, kind: InstanceManager, name: im, uid: u2, controller: true}]
spec:
  containers: [{name: im, image: im}]
`

func TestGenerateJobsCronJobsAndPods(t *testing.T) {
	out, errOut, code := genRun(kindsShop, "generate", "-f", "-")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	owners := map[string]string{}
	for _, doc := range strings.Split(out, "\n---\n") {
		var np networkingv1.NetworkPolicy
		if err := yaml.Unmarshal([]byte(doc), &np); err != nil {
			t.Fatal(err)
		}
		owners[np.Name] = np.Annotations["netguard.io/workload"]
	}
	want := map[string]string{
		"netguard-allow-dns": "", "netguard-default-deny": "",
		"netguard.migrate.depends-on": "Job/migrate", "netguard.migrate.to.db": "Job/migrate",
		"netguard.backup.depends-on": "CronJob/backup", "netguard.backup.to.db": "CronJob/backup",
		"netguard.instance-manager.depends-on": "Pod/instance-manager", "netguard.instance-manager.to.db": "Pod/instance-manager",
	}
	if len(owners) != len(want) {
		t.Errorf("policies %v, want %v (the ReplicaSet's pod web-abc12 must be skipped)", owners, want)
	}
	for name, w := range want {
		if got, ok := owners[name]; !ok || got != w {
			t.Errorf("policy %s: workload %q (present %v), want %q", name, got, ok, w)
		}
	}
}

// reach sees a CronJob's pods through the job template, and a bare Pod
// with its own labels plus the component netguard gives it.
func TestReachJobsCronJobsAndPods(t *testing.T) {
	for _, c := range []struct {
		from, to string
		code     int
	}{
		{"shop/backup", "shop/db", 0},
		{"shop/migrate", "shop/db", 0},
		{"shop/instance-manager", "shop/db", 0},
		{"shop/db", "shop/backup", 1},
	} {
		_, errOut, code := genRun(kindsShop, "reach", "-f", "-", "--generated", "--from", c.from, "--to", c.to, "--port", "5432")
		if code != c.code {
			t.Errorf("%s -> %s: exit %d, want %d: %s", c.from, c.to, code, c.code, errOut)
		}
	}
}

// check reports a bare Pod that claims a component another workload owns.
func TestCheckBarePodDuplicateComponent(t *testing.T) {
	in := kindsShop + `---
apiVersion: batch/v1
kind: Job
metadata:
  name: db
  namespace: shop
  annotations: {netguard.io/depends-on: "backup:80"}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: m, image: m}]
`
	out, errOut, code := genRun(in, "check", "-f", "-")
	if code != 1 || !strings.Contains(out, `Pod shop/db has invalid netguard annotations`) || !strings.Contains(out, `component "db" is already declared by Job/db`) {
		t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
