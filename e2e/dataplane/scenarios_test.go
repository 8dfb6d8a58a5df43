package dataplane_test

// The scenarios follow the vendor documents in shared/seeds, written as
// netguard annotations: for each, every documented path must connect through
// a real NetworkPolicy dataplane, and a sample of undocumented ones (other
// ports, other components, the reverse direction, another namespace) must be
// dropped. Every probe is also put to netguard reach (see expectOne).

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/netguard/netguard/rules"
)

// With no annotations, a guarded namespace is closed both ways; only DNS to
// the cluster DNS pods leaves it.
func TestNamespaceBaseline(t *testing.T) {
	s := newScenario(t)
	s.namespace("plain", nil)
	s.openNamespace("plain-other")
	s.deploy(workload{ns: "plain", name: "web", ports: []corev1.ContainerPort{tcp("http", 8080)}})
	s.deploy(workload{ns: "plain", name: "api", ports: []corev1.ContainerPort{tcp("http", 8080)}})
	s.pod("web", "deployment", "plain", "web")
	s.pod("api", "deployment", "plain", "api")
	s.rawPod("other", "plain-other", map[string]string{"app": "other"})
	s.external("outside")
	s.expect(
		openUDP("web", "dns", 53),
		open("web", "dns", 53),
		openUDP("api", "dns", 53),
		closed("web", "dns", 9153), // DNS pods, another port
		closed("web", "api", 8080),
		closed("api", "web", 8080),
		closedUDP("web", "api", 53),
		closed("other", "web", 8080), // another namespace
		closed("web", "other", 8080),
		closed("outside", "web", 8080), // outside the pod network
		closed("web", "outside", 443),
	)
}

// Trifork's platform guide: a frontend calls its backend on 8080, and a
// worker uses a platform profile for an external DNS service (1.1.1.1:53 in
// the guide; here a local host stands in for it).
func TestTriforkFrontendBackendAndExternalProfile(t *testing.T) {
	s := newScenario(t)
	s.namespace("trifork", nil)
	s.openNamespace("trifork-other")
	ext := s.external("external-dns")
	s.apply(fmt.Sprintf(`apiVersion: netguard.io/v1alpha1
kind: NetworkProfile
metadata:
  name: trifork-external-dns
spec:
  description: DNS at an external address (a local stand-in for 1.1.1.1)
  egress:
  - to:
    - ipBlock:
        cidr: %s/32
    ports:
    - protocol: TCP
      port: 53
    - protocol: UDP
      port: 53
`, ext.IP))
	s.deploy(workload{ns: "trifork", name: "frontend", annotations: map[string]string{rules.AnnotationDependsOn: "backend:8080"}, ports: []corev1.ContainerPort{tcp("http", 80)}})
	s.deploy(workload{ns: "trifork", name: "backend", annotations: map[string]string{rules.AnnotationComponent: "backend"}, ports: []corev1.ContainerPort{tcp("http", 8080)}})
	s.deploy(workload{ns: "trifork", name: "my-worker", annotations: map[string]string{rules.AnnotationComponent: "my-worker-app", rules.AnnotationProfiles: "trifork-external-dns"}})
	s.generated("trifork", "Deployment/frontend", "netguard.frontend.depends-on", "netguard.frontend.to.backend")
	s.generated("trifork", "Deployment/my-worker", "netguard.my-worker-app.profile.trifork-external-dns")
	s.pod("frontend", "deployment", "trifork", "frontend")
	s.pod("backend", "deployment", "trifork", "backend")
	s.pod("worker", "deployment", "trifork", "my-worker")
	s.rawPod("stranger", "trifork-other", map[string]string{"app": "frontend", rules.LabelComponent: "frontend"})
	s.expect(
		// documented
		open("frontend", "backend", 8080),
		open("worker", "external-dns", 53),
		openUDP("worker", "external-dns", 53),
		openUDP("frontend", "dns", 53),
		// other ports
		closed("frontend", "backend", 8081),
		closed("frontend", "backend", 80),
		closed("worker", "external-dns", 443),
		// the reverse direction
		closed("backend", "frontend", 80),
		closed("backend", "frontend", 8080),
		// other components
		closed("worker", "backend", 8080),
		closed("frontend", "external-dns", 53),
		closedUDP("backend", "external-dns", 53),
		// another namespace, even with the same labels (its own egress is
		// open: backend's ingress alone stops it)
		closed("stranger", "backend", 8080),
		closed("external-dns", "backend", 8080),
	)
}

// Kannika Armory across two namespaces: the API server (kannika-system)
// scrapes backup and restore pods (kannika-data) on 9000, and they push
// events to its gateway on 8082. The profiles are docs/profiles/kannika-armory.yaml.
func TestKannikaArmoryAcrossNamespaces(t *testing.T) {
	s := newScenario(t)
	s.namespace("kannika-system", nil)
	s.namespace("kannika-data", nil)
	s.openNamespace("kannika-elsewhere")
	s.applyFile("../../docs/profiles/kannika-armory.yaml")
	s.deploy(workload{ns: "kannika-system", name: "api", annotations: map[string]string{rules.AnnotationComponent: "api", rules.AnnotationProfiles: "kannika-armory-system"},
		ports: []corev1.ContainerPort{tcp("events", 8082), tcp("http", 8080)}})
	s.deploy(workload{ns: "kannika-system", name: "console", annotations: map[string]string{rules.AnnotationDependsOn: "api:8080"}})
	s.deploy(workload{ns: "kannika-data", name: "backup", annotations: map[string]string{rules.AnnotationProfiles: "kannika-armory-data"}, ports: []corev1.ContainerPort{tcp("metrics", 9000)}})
	s.deploy(workload{ns: "kannika-data", name: "restore", annotations: map[string]string{rules.AnnotationProfiles: "kannika-armory-data"}, ports: []corev1.ContainerPort{tcp("metrics", 9000)}})
	s.deploy(workload{ns: "kannika-data", name: "other", ports: []corev1.ContainerPort{tcp("metrics", 9000)}})
	s.generated("kannika-system", "Deployment/api", "netguard.api.profile.kannika-armory-system")
	s.generated("kannika-data", "Deployment/backup", "netguard.backup.profile.kannika-armory-data")
	s.pod("api", "deployment", "kannika-system", "api")
	s.pod("console", "deployment", "kannika-system", "console")
	s.pod("backup", "deployment", "kannika-data", "backup")
	s.pod("restore", "deployment", "kannika-data", "restore")
	s.pod("other", "deployment", "kannika-data", "other")
	s.rawPod("stranger", "kannika-elsewhere", map[string]string{rules.LabelComponent: "api"})
	s.expect(
		// documented
		open("api", "backup", 9000),
		open("api", "restore", 9000),
		open("backup", "api", 8082),
		open("restore", "api", 8082),
		open("console", "api", 8080),
		// the reverse ports
		closed("backup", "api", 9000),
		closed("api", "backup", 8082),
		// other ports
		closed("backup", "api", 8080),
		closed("api", "backup", 9001),
		// other components
		closed("console", "backup", 9000),
		closed("backup", "console", 8082),
		closed("api", "other", 9000),
		closed("other", "api", 8082),
		closed("backup", "restore", 9000),
		// another namespace
		closed("stranger", "backup", 9000),
		closed("stranger", "api", 8082),
		closed("backup", "stranger", 8082),
	)
}

// Longhorn: managers talk to each other on 9500 and to the instance managers
// on 8500-8504; instance managers talk to each other on 10000-30000. The
// manager runs as a DaemonSet and the instance manager as a StatefulSet here,
// as in Longhorn, so every workload kind is covered.
func TestLonghornManagerAndInstanceManager(t *testing.T) {
	s := newScenario(t)
	s.namespace("longhorn-system", nil)
	s.applyYAML(`apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: longhorn-manager
  namespace: longhorn-system
  annotations:
    netguard.io/depends-on: |
      longhorn-manager:9500
      instance-manager:8500-8504
      backing-image-manager:8000
spec:
  selector: {matchLabels: {app: longhorn-manager}}
  template:
    metadata: {labels: {app: longhorn-manager}}
    spec:
      nodeSelector: {netguard.io/no-such-node: "true"}
      containers:
      - name: manager
        image: registry.example/longhorn-manager
        ports: [{name: manager, containerPort: 9500}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: instance-manager
  namespace: longhorn-system
  annotations:
    netguard.io/depends-on: instance-manager:10000-30000
spec:
  replicas: 0
  serviceName: instance-manager
  selector: {matchLabels: {app: instance-manager}}
  template:
    metadata: {labels: {app: instance-manager}}
    spec:
      containers:
      - name: instance-manager
        image: registry.example/longhorn-instance-manager
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: longhorn-ui
  namespace: longhorn-system
  annotations:
    netguard.io/depends-on: longhorn-manager:9500
spec:
  replicas: 0
  selector: {matchLabels: {app: longhorn-ui}}
  template:
    metadata: {labels: {app: longhorn-ui}}
    spec:
      containers: [{name: ui, image: registry.example/longhorn-ui}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: backing-image-manager
  namespace: longhorn-system
  annotations:
    netguard.io/component: backing-image-manager
spec:
  replicas: 0
  selector: {matchLabels: {app: backing-image-manager}}
  template:
    metadata: {labels: {app: backing-image-manager}}
    spec:
      containers: [{name: bim, image: registry.example/backing-image-manager}]
`)
	s.generated("longhorn-system", "DaemonSet/longhorn-manager", "netguard.longhorn-manager.depends-on", "netguard.longhorn-manager.to.longhorn-manager",
		"netguard.longhorn-manager.to.instance-manager", "netguard.longhorn-manager.to.backing-image-manager")
	s.generated("longhorn-system", "StatefulSet/instance-manager", "netguard.instance-manager.depends-on", "netguard.instance-manager.to.instance-manager")
	s.pod("manager-1", "daemonset", "longhorn-system", "longhorn-manager")
	s.pod("manager-2", "daemonset", "longhorn-system", "longhorn-manager")
	s.pod("im-1", "statefulset", "longhorn-system", "instance-manager")
	s.pod("im-2", "statefulset", "longhorn-system", "instance-manager")
	s.pod("ui", "deployment", "longhorn-system", "longhorn-ui")
	s.pod("bim", "deployment", "longhorn-system", "backing-image-manager")
	s.expect(
		// documented
		open("manager-1", "manager-2", 9500),
		open("manager-2", "manager-1", 9500),
		open("manager-1", "im-1", 8500),
		open("manager-1", "im-2", 8502),
		open("manager-2", "im-1", 8504),
		open("manager-1", "bim", 8000),
		open("ui", "manager-1", 9500),
		open("im-1", "im-2", 10000),
		open("im-2", "im-1", 20000),
		open("im-1", "im-2", 30000),
		// other ports, next to the documented ones
		closed("manager-1", "im-1", 8499),
		closed("manager-1", "im-1", 8505),
		closed("im-1", "im-2", 9999),
		closed("im-1", "im-2", 30001),
		closed("ui", "manager-1", 9501),
		closed("manager-1", "manager-2", 9501),
		// the range belongs to instance managers among themselves
		closed("manager-1", "im-1", 20000),
		closed("ui", "im-1", 10000),
		// the reverse direction
		closed("im-1", "manager-1", 9500),
		closed("manager-1", "ui", 9500),
		closed("bim", "manager-1", 9500),
		// other components
		closed("ui", "im-1", 8500),
		closed("ui", "bim", 8000),
		closed("im-1", "bim", 8000),
	)
}

// IBM Event Processing with Flink: task managers and the job manager talk RPC
// (6123) and blob (6124); the job manager's REST API (8081, a named port
// here) is for the Flink pods, the operator and Event Processing.
func TestEventProcessingFlink(t *testing.T) {
	s := newScenario(t)
	s.namespace("event-processing", nil)
	s.openNamespace("ep-other")
	flinkPorts := []corev1.ContainerPort{tcp("rest", 8081), tcp("rpc", 6123), tcp("blob", 6124)}
	s.deploy(workload{ns: "event-processing", name: "flink-jobmanager", annotations: map[string]string{rules.AnnotationComponent: "jobmanager",
		rules.AnnotationDependsOn: "taskmanager:6123 taskmanager:6124 taskmanager:rest jobmanager:6123"}, ports: flinkPorts})
	s.deploy(workload{ns: "event-processing", name: "flink-taskmanager", annotations: map[string]string{rules.AnnotationComponent: "taskmanager",
		rules.AnnotationDependsOn: "jobmanager:6123 jobmanager:6124 jobmanager:rest taskmanager:6123 taskmanager:6124"}, ports: flinkPorts})
	s.deploy(workload{ns: "event-processing", name: "flink-operator", annotations: map[string]string{rules.AnnotationDependsOn: "jobmanager:rest"},
		ports: []corev1.ContainerPort{tcp("webhook", 9443)}})
	s.deploy(workload{ns: "event-processing", name: "ibm-ep", annotations: map[string]string{rules.AnnotationDependsOn: "jobmanager:rest"},
		ports: []corev1.ContainerPort{tcp("ui", 3000), tcp("backend", 8888)}})
	s.generated("event-processing", "Deployment/ibm-ep", "netguard.ibm-ep.depends-on", "netguard.ibm-ep.to.jobmanager")
	s.pod("jobmanager", "deployment", "event-processing", "flink-jobmanager")
	s.pod("taskmanager-1", "deployment", "event-processing", "flink-taskmanager")
	s.pod("taskmanager-2", "deployment", "event-processing", "flink-taskmanager")
	s.pod("operator", "deployment", "event-processing", "flink-operator")
	s.pod("ep", "deployment", "event-processing", "ibm-ep")
	s.rawPod("stranger", "ep-other", map[string]string{rules.LabelComponent: "ibm-ep"})
	s.expect(
		// documented
		open("taskmanager-1", "jobmanager", 6123),
		open("taskmanager-1", "jobmanager", 6124),
		open("jobmanager", "taskmanager-2", 6123),
		open("taskmanager-1", "taskmanager-2", 6124),
		open("taskmanager-2", "jobmanager", 8081),
		open("jobmanager", "taskmanager-1", 8081),
		open("operator", "jobmanager", 8081),
		open("ep", "jobmanager", 8081),
		// other ports
		closed("ep", "jobmanager", 6123),
		closed("operator", "jobmanager", 6124),
		closed("taskmanager-1", "jobmanager", 9443),
		// other components
		closed("ep", "taskmanager-1", 8081),
		closed("operator", "taskmanager-1", 6123),
		closed("ep", "operator", 9443),
		// the reverse direction
		closed("jobmanager", "ep", 8888),
		closed("jobmanager", "operator", 9443),
		// another namespace
		closed("stranger", "jobmanager", 8081),
	)
}

// applyYAML is apply for manifests that carry their namespaces.
func (s *scenario) applyYAML(yaml string) { s.t.Helper(); s.apply(yaml) }
