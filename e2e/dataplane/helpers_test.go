package dataplane_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/netguard/netguard/e2e/dataplane"
	"github.com/netguard/netguard/rules"
)

// scenario is one test's namespaces, workloads and hosts.
type scenario struct {
	t     *testing.T
	ctx   context.Context
	hosts map[string]*dataplane.Host
}

func newScenario(t *testing.T) *scenario {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	return &scenario{t: t, ctx: ctx, hosts: map[string]*dataplane.Host{}}
}

// with is the scenario for a subtest.
func (s *scenario) with(t *testing.T) *scenario {
	c := *s
	c.t = t
	return &c
}

// namespace creates a namespace that netguard guards at its defaults.
func (s *scenario) namespace(name string, labels map[string]string) {
	s.t.Helper()
	if err := testCluster.EnsureNamespace(s.ctx, name, labels); err != nil {
		s.t.Fatal(err)
	}
	// The baseline controller writes default-deny and allow-dns shortly
	// after the namespace appears.
	s.eventually("baseline policies in "+name, func() error {
		for _, p := range []string{rules.DefaultDenyPolicyName, rules.AllowDNSPolicyName} {
			if _, err := cs.NetworkingV1().NetworkPolicies(name).Get(s.ctx, p, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		return nil
	})
}

// openNamespace creates a namespace that enforces privileged: netguard
// writes no baseline there, so its pods' egress is open and a probe from it
// tests the destination's ingress alone.
func (s *scenario) openNamespace(name string) {
	s.t.Helper()
	if err := testCluster.EnsureNamespace(s.ctx, name, map[string]string{"netguard.io/enforce": "privileged"}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) eventually(what string, f func() error) {
	s.t.Helper()
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = f(); err == nil {
			return
		}
	}
	s.t.Fatalf("%s: not within 30s: %v", what, err)
}

// apply runs kubectl apply as the cluster admin.
func (s *scenario) apply(yaml string, args ...string) {
	s.t.Helper()
	out, err := testCluster.Kubectl(s.ctx, strings.NewReader(yaml), append([]string{"apply", "-f", "-"}, args...)...)
	if err != nil {
		s.t.Fatalf("kubectl apply: %v\n%s", err, out)
	}
}

// applyFile runs kubectl apply -f path as the cluster admin.
func (s *scenario) applyFile(path string) {
	s.t.Helper()
	out, err := testCluster.Kubectl(s.ctx, nil, "apply", "-f", path)
	if err != nil {
		s.t.Fatalf("kubectl apply -f %s: %v\n%s", path, err, out)
	}
}

// workload is a Deployment with netguard annotations and container ports.
// It keeps zero replicas: the dataplane pods are made from its stored pod
// template (see pod), so no controller competes with them.
type workload struct {
	ns, name    string
	annotations map[string]string
	ports       []corev1.ContainerPort
}

func tcp(name string, port int32) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: port, Protocol: corev1.ProtocolTCP}
}

func (s *scenario) deploy(w workload) {
	s.t.Helper()
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.ns, Name: w.name, Annotations: w.annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(0)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": w.name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": w.name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: w.name, Image: "registry.example/" + w.name, Ports: w.ports}}},
			},
		},
	}
	created, err := cs.AppsV1().Deployments(w.ns).Create(s.ctx, d, metav1.CreateOptions{})
	if err != nil {
		s.t.Fatalf("create deployment %s/%s: %v", w.ns, w.name, err)
	}
	if _, ok := created.Spec.Template.Labels[rules.LabelComponent]; !ok && rules.IsAnnotated(w.annotations) {
		s.t.Fatalf("deployment %s/%s: netguard did not label its pod template", w.ns, w.name)
	}
}

// pod makes a dataplane pod of a workload, with its stored pod template's
// labels (so the component label netguard injected) and ports.
func (s *scenario) pod(key, kind, ns, workloadName string) *dataplane.Host {
	s.t.Helper()
	spec, err := dataplane.PodSpecForWorkload(s.ctx, cs, kind, ns, workloadName, key)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.addPod(key, spec)
}

// rawPod makes a dataplane pod with the given labels.
func (s *scenario) rawPod(key, ns string, labels map[string]string) *dataplane.Host {
	s.t.Helper()
	return s.addPod(key, dataplane.PodSpec{Namespace: ns, Name: key, Labels: labels})
}

func (s *scenario) addPod(key string, spec dataplane.PodSpec) *dataplane.Host {
	s.t.Helper()
	h, err := dp.AddPod(s.ctx, spec)
	if h != nil {
		s.t.Cleanup(func() { _ = h.Delete(context.Background()) })
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.hosts[key] = h
	return h
}

// external makes a host outside the pod network: a stand-in for an address
// a profile's ipBlock names.
func (s *scenario) external(key string) *dataplane.Host {
	s.t.Helper()
	h, err := dp.AddHost(s.ctx, key)
	if h != nil {
		s.t.Cleanup(func() { _ = h.Delete(context.Background()) })
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.hosts[key] = h
	return h
}

// path is one connection and whether it must connect.
type path struct {
	from, to string
	port     int
	proto    string // TCP when empty
	connects bool
}

func open(from, to string, port int) path {
	return path{from: from, to: to, port: port, connects: true}
}
func closed(from, to string, port int) path { return path{from: from, to: to, port: port} }
func openUDP(from, to string, port int) path {
	return path{from: from, to: to, port: port, proto: "UDP", connects: true}
}
func closedUDP(from, to string, port int) path {
	return path{from: from, to: to, port: port, proto: "UDP"}
}

func (p path) String() string {
	proto := p.proto
	if proto == "" {
		proto = "TCP"
	}
	return fmt.Sprintf("%s -> %s on %d/%s", p.from, p.to, p.port, proto)
}

// expect probes every path until it shows the wanted state (a policy takes
// effect a moment after its API call), then checks that netguard reach, on
// the policies and pods read from the cluster, says the same.
func (s *scenario) expect(paths ...path) {
	s.t.Helper()
	for _, p := range paths {
		s.expectOne(p)
	}
}

func (s *scenario) host(key string) *dataplane.Host {
	s.t.Helper()
	if key == "dns" {
		return dnsPod
	}
	h, ok := s.hosts[key]
	if !ok {
		s.t.Fatalf("no host %q in this scenario", key)
	}
	return h
}

func (s *scenario) expectOne(p path) {
	s.t.Helper()
	if p.proto == "" {
		p.proto = "TCP"
	}
	from, to := s.host(p.from), s.host(p.to)
	if err := to.Listen(p.port, p.proto); err != nil {
		s.t.Fatal(err)
	}
	var (
		obs dataplane.Observation
		err error
	)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		obs, err = from.Probe(s.ctx, dp.Verdicts(), to.IP, p.port, p.proto)
		if err == nil && obs.Connected == p.connects {
			break
		}
		if time.Now().After(deadline) {
			if err != nil {
				s.t.Errorf("%s: %v", p, err)
				return
			}
			s.t.Errorf("%s: %s, want %s", p, obs, map[bool]string{true: "connected", false: "blocked"}[p.connects])
			break
		}
	}
	s.t.Logf("%s: %s", p, obs)
	v, err := reach(s.ctx, from, to, p.port, p.proto)
	if err != nil {
		s.t.Errorf("%s: netguard reach: %v", p, err)
		return
	}
	probes.Add(1)
	if v.Allowed != obs.Connected {
		s.t.Errorf("%s: netguard reach disagrees with the dataplane: the dataplane %s; reach: %s", p, obs, v.Reason())
		return
	}
	agreements.Add(1)
}

// reach is netguard reach's verdict on the cluster as it is: every
// NetworkPolicy, the pods' labels and ports, the namespaces' labels.
func reach(ctx context.Context, from, to *dataplane.Host, port int, proto string) (rules.Verdict, error) {
	list, err := cs.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return rules.Verdict{}, err
	}
	policies := make([]*networkingv1.NetworkPolicy, len(list.Items))
	for i := range list.Items {
		policies[i] = &list.Items[i]
	}
	ev, err := rules.NewEvaluator(policies)
	if err != nil {
		return rules.Verdict{}, err
	}
	src, err := endpoint(ctx, from)
	if err != nil {
		return rules.Verdict{}, err
	}
	dst, err := endpoint(ctx, to)
	if err != nil {
		return rules.Verdict{}, err
	}
	p, err := rules.ParsePort(fmt.Sprintf("%d/%s", port, proto))
	if err != nil {
		return rules.Verdict{}, err
	}
	return ev.Reach(src, dst, p), nil
}

func endpoint(ctx context.Context, h *dataplane.Host) (rules.Endpoint, error) {
	if h.Pod == nil {
		return rules.ExternalEndpoint(h.IP.String()), nil
	}
	pod, err := cs.CoreV1().Pods(h.Pod.Namespace).Get(ctx, h.Pod.Name, metav1.GetOptions{})
	if err != nil {
		return rules.Endpoint{}, err
	}
	ns, err := cs.CoreV1().Namespaces().Get(ctx, pod.Namespace, metav1.GetOptions{})
	if err != nil {
		return rules.Endpoint{}, err
	}
	e := rules.Endpoint{Namespace: pod.Namespace, Name: pod.Name, Labels: pod.Labels, NamespaceLabels: ns.Labels, IP: h.IP.String()}
	for _, c := range pod.Spec.Containers {
		e.Ports = append(e.Ports, c.Ports...)
	}
	return e, nil
}

// generated waits until the workload's generated policies are exactly want.
func (s *scenario) generated(ns, ref string, want ...string) {
	s.t.Helper()
	slices.Sort(want)
	s.eventually("generated policies of "+ns+"/"+ref, func() error {
		list, err := cs.NetworkingV1().NetworkPolicies(ns).List(s.ctx, metav1.ListOptions{LabelSelector: rules.LabelManagedBy + "=" + rules.ManagedByValue})
		if err != nil {
			return err
		}
		var got []string
		for _, p := range list.Items {
			if p.Annotations[rules.AnnotationWorkload] == ref {
				got = append(got, p.Name)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		return nil
	})
}
