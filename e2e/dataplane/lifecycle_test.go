package dataplane_test

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/netguard/netguard/rules"
)

// A NetworkPolicy that netguard denies at baseline really opens what it says:
// written past the level check (by an identity netguard exempts, as in a
// cluster without netguard), it lets another namespace and an address outside
// the cluster into the backend. This is the harm admission prevents.
func TestDeniedPolicyWouldOpenTheBackend(t *testing.T) {
	s := newScenario(t)
	s.namespace("harm", nil)
	s.openNamespace("harm-other")
	s.deploy(workload{ns: "harm", name: "frontend", annotations: map[string]string{rules.AnnotationDependsOn: "backend:8080"}})
	s.deploy(workload{ns: "harm", name: "backend", annotations: map[string]string{rules.AnnotationComponent: "backend"}, ports: []corev1.ContainerPort{tcp("http", 8080)}})
	s.pod("frontend", "deployment", "harm", "frontend")
	s.pod("backend", "deployment", "harm", "backend")
	s.rawPod("stranger", "harm-other", map[string]string{"app": "stranger"})
	s.external("outside")
	s.expect(
		open("frontend", "backend", 8080),
		closed("stranger", "backend", 8080),
		closed("outside", "backend", 8080),
	)

	// The policy of docs/examples/allow-from-anywhere.yaml, for the backend.
	policy := `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-from-anywhere
  namespace: harm
spec:
  podSelector:
    matchLabels:
      netguard.io/component: backend
  policyTypes: [Ingress]
  ingress:
  - ports:
    - protocol: TCP
      port: 8080
`
	out, err := testCluster.Kubectl(s.ctx, strings.NewReader(policy), "apply", "-f", "-")
	if err == nil || !strings.Contains(out, "denied") {
		t.Fatalf("netguard admitted a policy that opens the backend to every source: err=%v\n%s", err, out)
	}
	t.Logf("netguard denied it, as the tenant sees it:\n%s", out)
	s.expect(closed("stranger", "backend", 8080), closed("outside", "backend", 8080))

	out, err = testCluster.KubectlAs(s.ctx, bypassKubeconfig, strings.NewReader(policy), "apply", "-f", "-")
	if err != nil {
		t.Fatalf("write the policy past the webhook: %v\n%s", err, out)
	}
	s.expect(
		// the harm: another namespace and the outside world get in
		open("stranger", "backend", 8080),
		open("outside", "backend", 8080),
		// only on the port it names, and only into the backend
		closed("stranger", "backend", 8081),
		closed("stranger", "frontend", 8080),
	)
	if err := cs.NetworkingV1().NetworkPolicies("harm").Delete(s.ctx, "allow-from-anywhere", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	s.expect(
		closed("stranger", "backend", 8080),
		closed("outside", "backend", 8080),
		open("frontend", "backend", 8080),
	)
}

// The dataplane follows the annotations: a removed dependency closes, a
// changed profile moves the open port, a deleted workload closes its paths.
func TestUpdatesReachTheDataplane(t *testing.T) {
	s := newScenario(t)
	s.namespace("updates", nil)
	ext := s.external("partner")
	profile := func(port int) string {
		return fmt.Sprintf(`apiVersion: netguard.io/v1alpha1
kind: NetworkProfile
metadata:
  name: updates-partner-api
spec:
  egress:
  - to:
    - ipBlock:
        cidr: %s/32
    ports:
    - protocol: TCP
      port: %d
`, ext.IP, port)
	}
	s.apply(profile(443))
	s.deploy(workload{ns: "updates", name: "web", annotations: map[string]string{rules.AnnotationDependsOn: "api:8080 cache:6379", rules.AnnotationProfiles: "updates-partner-api"}})
	s.deploy(workload{ns: "updates", name: "api", annotations: map[string]string{rules.AnnotationComponent: "api"}, ports: []corev1.ContainerPort{tcp("http", 8080)}})
	s.deploy(workload{ns: "updates", name: "cache", annotations: map[string]string{rules.AnnotationComponent: "cache"}, ports: []corev1.ContainerPort{tcp("redis", 6379)}})
	s.pod("web", "deployment", "updates", "web")
	s.pod("api", "deployment", "updates", "api")
	s.pod("cache", "deployment", "updates", "cache")
	s.expect(
		open("web", "api", 8080),
		open("web", "cache", 6379),
		open("web", "partner", 443),
		closed("web", "partner", 8443),
	)

	t.Run("removing a dependency closes it", func(t *testing.T) {
		s := s.with(t)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			d, err := cs.AppsV1().Deployments("updates").Get(s.ctx, "web", metav1.GetOptions{})
			if err != nil {
				return err
			}
			d.Annotations[rules.AnnotationDependsOn] = "api:8080"
			_, err = cs.AppsV1().Deployments("updates").Update(s.ctx, d, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		s.expect(closed("web", "cache", 6379), open("web", "api", 8080))
	})

	t.Run("a profile change moves the open port", func(t *testing.T) {
		s := s.with(t)
		s.apply(profile(8443))
		s.expect(open("web", "partner", 8443), closed("web", "partner", 443))
	})

	t.Run("deleting the workload closes its paths", func(t *testing.T) {
		s := s.with(t)
		if err := cs.AppsV1().Deployments("updates").Delete(s.ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		// The garbage collector removes the generated policies; the pod
		// left behind keeps its labels and is shut in by the baseline.
		s.generated("updates", "Deployment/web")
		s.expect(closed("web", "api", 8080), closed("web", "partner", 8443), openUDP("web", "dns", 53))
	})
}
