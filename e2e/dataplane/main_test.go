package dataplane_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/netguard/netguard/e2e/cluster"
	"github.com/netguard/netguard/e2e/dataplane"
)

var (
	testCluster *cluster.Cluster
	dp          *dataplane.Dataplane
	cs          kubernetes.Interface
	// dnsPod is the cluster DNS stand-in: kube-system, k8s-app=kube-dns,
	// which every guarded namespace's netguard-allow-dns opens.
	dnsPod *dataplane.Host
	// bypassKubeconfig writes as an identity netguard exempts from every
	// level (--exempt-usernames): the way to show what a denied policy would
	// do in a cluster without netguard.
	bypassKubeconfig string

	probes, agreements atomic.Int64
	knpLog             = &lockedBuffer{}
)

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

const bypassUser = "dataplane-bypass"

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	bin, err := dataplane.FindBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dataplane:", err)
		return 1
	}
	if _, err := dataplane.Preflight(bin); err != nil {
		if os.Getenv(dataplane.SkipEnv) == "1" {
			fmt.Printf("dataplane tests skipped (%s=1): %v\n", dataplane.SkipEnv, err)
			return 0
		}
		fmt.Fprintf(os.Stderr, "FAIL %v (set %s=1 to skip these tests on such a machine)\n", err, dataplane.SkipEnv)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tmp, err := os.MkdirTemp("", "netguard-dataplane-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	netguardBin := filepath.Join(tmp, "netguard")
	build := exec.CommandContext(ctx, "go", "build", "-o", netguardBin, "../../cmd/netguard")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build netguard:", err)
		return 1
	}
	crds, _ := filepath.Abs("../../charts/netguard/crds")
	testCluster, err = cluster.Start(ctx, cluster.Options{CRDDirs: []string{crds}, ControllerManager: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start control plane:", err)
		return 1
	}
	defer func() {
		if err := testCluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop control plane:", err)
		}
	}()
	if cs, err = testCluster.Clientset(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ngLog := &lockedBuffer{}
	ng, err := testCluster.StartNetguard(ctx, cluster.NetguardOptions{Binary: netguardBin, Log: ngLog, Args: []string{"--exempt-usernames=" + bypassUser + "," + dataplane.PodWriter}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "start netguard: %v\n%s", err, ngLog.b)
		return 1
	}
	defer func() {
		if err := ng.Stop(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "stop netguard:", err)
		}
	}()
	if _, bypassKubeconfig, err = testCluster.AddUser(bypassUser, "system:masters"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	dp, err = dataplane.Start(ctx, dataplane.Options{Binary: bin, Config: testCluster.Config, Dir: tmp, Log: knpLog})
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL", err)
		return 1
	}
	defer func() {
		if err := dp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop dataplane:", err)
		}
	}()
	mech := "iptables NFQUEUE shim (chain " + dp.Chain + ")"
	if dp.Chain == "" {
		mech = "its own nftables table"
	}
	fmt.Printf("dataplane: kube-network-policies on queue %d, pods in %s, queued by %s\n", dp.Queue, dp.Subnet, mech)

	if dnsPod, err = dp.AddPod(ctx, dataplane.PodSpec{Namespace: "kube-system", Name: "coredns", Labels: map[string]string{"k8s-app": "kube-dns"},
		Ports: []corev1.ContainerPort{{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}, {Name: "dns-tcp", ContainerPort: 53}, {Name: "metrics", ContainerPort: 9153}}}); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL", err)
		return 1
	}
	for _, l := range []struct {
		port  int
		proto string
	}{{53, "UDP"}, {53, "TCP"}, {9153, "TCP"}} {
		if err := dnsPod.Listen(l.port, l.proto); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL", err)
			return 1
		}
	}
	if err := negativeControl(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL negative control: %v\nkube-network-policies log (tail):\n%s\n", err, tail(knpLog, 30))
		return 1
	}
	code := m.Run()
	n, a := probes.Load(), agreements.Load()
	fmt.Printf("dataplane: %d probed connections; netguard reach agreed with the dataplane on %d of them\n", n, a)
	if code == 0 && n != a {
		code = 1
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "kube-network-policies log (tail):\n%s\n", tail(knpLog, 40))
	}
	return code
}

func tail(l *lockedBuffer, n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b
	lines := 0
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			lines++
			if lines > n {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}

// negativeControl runs before any test, in every run: two pods of a namespace
// that netguard leaves open connect; a deny-all policy must then drop the
// very same connection, and deleting it must open it again. A dataplane that
// enforces nothing, or that never sees the pods' packets, fails here loudly.
func negativeControl(ctx context.Context) error {
	const ns = "dataplane-control"
	if err := testCluster.EnsureNamespace(ctx, ns, map[string]string{"netguard.io/enforce": "privileged"}); err != nil {
		return err
	}
	a, err := dp.AddPod(ctx, dataplane.PodSpec{Namespace: ns, Name: "a", Labels: map[string]string{"app": "a"}})
	if err != nil {
		return err
	}
	b, err := dp.AddPod(ctx, dataplane.PodSpec{Namespace: ns, Name: "b", Labels: map[string]string{"app": "b"}})
	if err != nil {
		return err
	}
	if err := b.Listen(7, "TCP"); err != nil {
		return err
	}
	want := func(connected bool) error {
		var last dataplane.Observation
		var lastErr error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			last, lastErr = a.Probe(ctx, dp.Verdicts(), b.IP, 7, "TCP")
			if lastErr == nil && last.Connected == connected {
				return nil
			}
		}
		if lastErr != nil {
			return lastErr
		}
		return fmt.Errorf("%s -> %s:7/TCP: %s, want connected=%v", a.Name, b.Name, last, connected)
	}
	if err := want(true); err != nil {
		return fmt.Errorf("with no policy: %w", err)
	}
	deny := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deny-all"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}}}
	if _, err := cs.NetworkingV1().NetworkPolicies(ns).Create(ctx, deny, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := want(false); err != nil {
		return fmt.Errorf("the dataplane does not enforce a deny-all policy: %w", err)
	}
	if err := cs.NetworkingV1().NetworkPolicies(ns).Delete(ctx, deny.Name, metav1.DeleteOptions{}); err != nil {
		return err
	}
	if err := want(true); err != nil {
		return fmt.Errorf("after the deny-all policy was deleted: %w", err)
	}
	return nil
}
