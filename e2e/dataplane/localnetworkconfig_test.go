package dataplane_test

// The seed scenarios in their LocalNetworkConfig form: the pods an operator
// or controller creates carry only its labels, and a LocalNetworkConfig
// selects them. The pods are made with rawPod, as an operator makes them,
// with the labels only.

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netguard/netguard/rules"
)

// policiesExist waits until every named NetworkPolicy exists in ns (a
// LocalNetworkConfig's are written in its admission request).
func (s *scenario) policiesExist(ns string, names ...string) {
	s.t.Helper()
	s.eventually("policies in "+ns, func() error {
		for _, name := range names {
			if _, err := cs.NetworkingV1().NetworkPolicies(ns).Get(s.ctx, name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		return nil
	})
}

// IBM Event Processing with a Flink cluster in native Kubernetes mode
// (seed 003): job manager, task managers and the Event Processing instance
// selected by their operators' labels. Flink pods talk RPC (6123) and blob
// (6124) among themselves; Event Processing submits jobs to the job
// manager's REST API (8081) and talks to its own pods on 7000, 3000 and
// 8888; the REST API is open to any pod of the cluster through a platform
// profile.
func TestEventProcessingFlinkLocalNetworkConfig(t *testing.T) {
	s := newScenario(t)
	s.namespace("ep-lnc", nil)
	s.openNamespace("ep-lnc-other")
	s.apply(`apiVersion: netguard.io/v1alpha1
kind: NetworkProfile
metadata:
  name: ep-lnc-flink-rest
spec:
  description: the Flink REST API on 8081 from any pod of the cluster
  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: ep-lnc}}
  ingress:
  - from: [{namespaceSelector: {}}]
    ports: [{protocol: TCP, port: 8081}]
---
apiVersion: netguard.io/v1alpha1
kind: LocalNetworkConfig
metadata:
  name: orders-flink
  namespace: ep-lnc
spec:
  components:
    flink-jobmanager:
      podSelector:
        matchLabels: {app: orders-flink, component: jobmanager, type: flink-native-kubernetes, app.kubernetes.io/managed-by: flink-operator}
      dependsOn:
      - {component: flink-jobmanager, port: 6123}
      - {component: flink-jobmanager, port: 6124}
      - {component: flink-taskmanager, port: 6123}
      - {component: flink-taskmanager, port: 6124}
      - {networkProfile: ep-lnc-flink-rest}
    flink-taskmanager:
      podSelector:
        matchLabels: {app: orders-flink, component: taskmanager, type: flink-native-kubernetes, app.kubernetes.io/managed-by: flink-operator}
      dependsOn:
      - {component: flink-jobmanager, port: 6123}
      - {component: flink-jobmanager, port: 6124}
      - {component: flink-taskmanager, port: 6123}
      - {component: flink-taskmanager, port: 6124}
      - {networkProfile: ep-lnc-flink-rest}
---
apiVersion: netguard.io/v1alpha1
kind: LocalNetworkConfig
metadata:
  name: orders-ep
  namespace: ep-lnc
spec:
  components:
    event-processing:
      podSelector:
        matchLabels: {app.kubernetes.io/instance: orders-ep, app.kubernetes.io/managed-by: ep-operator}
      dependsOn:
      - {component: event-processing, port: 7000}
      - {component: event-processing, port: 3000}
      - {component: event-processing, port: 8888}
      - {component: flink-jobmanager, port: 8081}
`)
	s.policiesExist("ep-lnc", "netguard.flink-jobmanager.depends-on", "netguard.flink-jobmanager.to.flink-taskmanager",
		"netguard.flink-taskmanager.to.flink-jobmanager", "netguard.flink-jobmanager.profile.ep-lnc-flink-rest",
		"netguard.event-processing.depends-on", "netguard.event-processing.to.flink-jobmanager")
	flink := func(component string) map[string]string {
		return map[string]string{"app": "orders-flink", "component": component, "type": "flink-native-kubernetes", "app.kubernetes.io/managed-by": "flink-operator"}
	}
	epLabels := map[string]string{"app.kubernetes.io/instance": "orders-ep", "app.kubernetes.io/name": "event-processing", "app.kubernetes.io/managed-by": "ep-operator"}
	s.rawPod("jobmanager", "ep-lnc", flink("jobmanager"))
	s.rawPod("taskmanager-1", "ep-lnc", flink("taskmanager"))
	s.rawPod("taskmanager-2", "ep-lnc", flink("taskmanager"))
	s.rawPod("ep-1", "ep-lnc", epLabels)
	s.rawPod("ep-2", "ep-lnc", epLabels)
	s.rawPod("debug", "ep-lnc", map[string]string{"app": "debug"})
	s.rawPod("lookalike", "ep-lnc-other", flink("jobmanager"))
	s.expect(
		// documented
		open("taskmanager-1", "jobmanager", 6123),
		open("taskmanager-1", "jobmanager", 6124),
		open("jobmanager", "taskmanager-2", 6123),
		open("taskmanager-1", "taskmanager-2", 6124),
		open("ep-1", "jobmanager", 8081),
		open("ep-1", "ep-2", 7000),
		open("ep-2", "ep-1", 3000),
		open("ep-1", "ep-2", 8888),
		open("lookalike", "jobmanager", 8081), // REST from any pod of the cluster
		open("lookalike", "taskmanager-1", 8081),
		// other ports
		closed("taskmanager-1", "jobmanager", 6122),
		closed("jobmanager", "taskmanager-1", 6125),
		closed("ep-1", "jobmanager", 6123),
		closed("ep-1", "ep-2", 7001),
		// other components
		closed("ep-1", "taskmanager-1", 6123),
		closed("debug", "jobmanager", 8081), // its own egress is denied
		closed("debug", "ep-1", 7000),
		// the reverse direction
		closed("jobmanager", "ep-1", 8888),
		closed("taskmanager-1", "ep-1", 7000),
		// another namespace, with the job manager's labels
		closed("lookalike", "jobmanager", 6123),
		closed("lookalike", "ep-1", 7000),
		closed("jobmanager", "lookalike", 6123),
	)
}

// Longhorn (seed 002): the manager is annotated, the instance managers and
// a backing image data source are bare Pods that longhorn-manager creates,
// with Longhorn's labels, declared by a LocalNetworkConfig. The manager
// reaches instance managers on 8500-8504; instance managers reach each
// other, and the data source reaches them, on 10000-30000.
func TestLonghornLocalNetworkConfig(t *testing.T) {
	s := newScenario(t)
	s.namespace("longhorn-lnc", nil)
	s.openNamespace("longhorn-lnc-other")
	s.deploy(workload{ns: "longhorn-lnc", name: "longhorn-manager",
		annotations: map[string]string{rules.AnnotationDependsOn: "longhorn-manager:9500 instance-manager:8500-8504"},
		ports:       []corev1.ContainerPort{tcp("manager", 9500)}})
	s.apply(`apiVersion: netguard.io/v1alpha1
kind: LocalNetworkConfig
metadata:
  name: longhorn
  namespace: longhorn-lnc
spec:
  components:
    instance-manager:
      podSelector: {matchLabels: {longhorn.io/component: instance-manager}}
      dependsOn:
      - {component: instance-manager, port: "10000-30000"}
    backing-image-data-source:
      podSelector: {matchLabels: {longhorn.io/component: backing-image-data-source}}
      dependsOn:
      - {component: instance-manager, port: "10000-30000"}
`)
	s.generated("longhorn-lnc", "Deployment/longhorn-manager", "netguard.longhorn-manager.depends-on",
		"netguard.longhorn-manager.to.longhorn-manager", "netguard.longhorn-manager.to.instance-manager")
	s.policiesExist("longhorn-lnc", "netguard.instance-manager.depends-on", "netguard.instance-manager.to.instance-manager",
		"netguard.backing-image-data-source.to.instance-manager")
	im := func(node string) map[string]string {
		return map[string]string{"longhorn.io/component": "instance-manager", "longhorn.io/node": node, "longhorn.io/managed-by": "longhorn-manager"}
	}
	s.pod("manager-1", "deployment", "longhorn-lnc", "longhorn-manager")
	s.pod("manager-2", "deployment", "longhorn-lnc", "longhorn-manager")
	s.rawPod("im-1", "longhorn-lnc", im("node-a"))
	s.rawPod("im-2", "longhorn-lnc", im("node-b"))
	s.rawPod("bids", "longhorn-lnc", map[string]string{"longhorn.io/component": "backing-image-data-source", "longhorn.io/managed-by": "longhorn-manager"})
	s.rawPod("lookalike", "longhorn-lnc-other", im("node-a"))
	s.expect(
		// documented
		open("manager-1", "manager-2", 9500),
		open("manager-1", "im-1", 8500),
		open("manager-2", "im-2", 8504),
		open("im-1", "im-2", 10000),
		open("im-2", "im-1", 30000),
		open("bids", "im-1", 20000),
		// other ports, next to the documented ones
		closed("manager-1", "im-1", 8505),
		closed("im-1", "im-2", 9999),
		closed("bids", "im-2", 30001),
		// the range belongs to instance managers and the data source
		closed("manager-1", "im-1", 20000),
		// the reverse direction
		closed("im-1", "manager-1", 9500),
		closed("im-1", "bids", 10000),
		// another namespace, with an instance manager's labels
		closed("lookalike", "im-1", 10000),
		closed("im-1", "lookalike", 10000),
		closed("lookalike", "manager-1", 9500),
	)
}
