// Package dataplane runs a real NetworkPolicy implementation against a local
// control plane, so that netguard's promise (pods get the paths they declared
// and nothing else) is proven with packets and not only with netguard's own
// evaluator.
//
// The implementation is kube-network-policies, the Kubernetes SIG Network
// reference, which decides every connection in user space from an NFQUEUE.
// hack/dataplane-assets.sh builds it into bin/dataplane. Pods are network
// namespaces with a routed veth pair each (a /32 on either side, a host route,
// forwarding on the host end only), registered as Pod objects with
// status.podIPs and phase Running, since there is no kubelet. Where the kernel
// lacks the nftables queue expression (so kube-network-policies cannot install
// its own table) an iptables chain does the same: it returns established
// traffic and queues the rest of the run's pod range. See docs/dataplane.md.
//
// Every run claims its own /24 of 10.244.0.0/16, its own queue number, chain
// and interface names, so concurrent runs (make run and make test) do not meet.
// Traffic only ever goes to addresses the run created.
package dataplane

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// SkipEnv, set to 1, turns a machine that cannot run the dataplane from a
// failure into a skip.
const SkipEnv = "NETGUARD_SKIP_DATAPLANE"

// BinaryName is the file hack/dataplane-assets.sh builds in bin/dataplane.
const BinaryName = "kube-network-policies"

// claimDir holds one file per claimed subnet, with the owner's process id.
const claimDir = "/run/netguard-dataplane"

// FindBinary returns bin/dataplane/kube-network-policies of the repository
// that contains the working directory, or $NETGUARD_DATAPLANE_BINARY.
func FindBinary() (string, error) {
	if b := os.Getenv("NETGUARD_DATAPLANE_BINARY"); b != "" {
		return b, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "bin", "dataplane", BinaryName), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Capabilities is what Preflight found.
type Capabilities struct {
	// NFTQueue: the kernel has the nftables queue expression, so
	// kube-network-policies installs its own table and no shim is needed.
	NFTQueue bool
	// IPTablesQueue: iptables' NFQUEUE target works.
	IPTablesQueue bool
}

// Preflight checks that this machine can run the dataplane: root, network
// namespaces, the binary, and one of the two queue mechanisms. The error is
// one line that says what is missing and how to get it. The probes run in a
// throwaway network namespace, so the host is not touched.
func Preflight(binary string) (Capabilities, error) {
	var caps Capabilities
	if os.Geteuid() != 0 {
		return caps, errors.New("dataplane: needs root, to create network namespaces and netfilter rules")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return caps, errors.New("dataplane: the ip command (Debian's iproute2) is missing")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return caps, errors.New("dataplane: the unshare command (Debian's util-linux) is missing")
	}
	if st, err := os.Stat(binary); err != nil || st.IsDir() {
		return caps, fmt.Errorf("dataplane: %s is missing: run hack/dataplane-assets.sh (make test does)", binary)
	}
	probe := fmt.Sprintf("ngdp-preflight-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		return caps, fmt.Errorf("dataplane: cannot create a network namespace: %s", oneLine(out, err))
	}
	defer func() { _ = exec.Command("ip", "netns", "del", probe).Run() }()
	if _, err := exec.LookPath("nft"); err == nil {
		cmd := exec.Command("ip", "netns", "exec", probe, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader("table inet ngdp {\n chain c {\n  type filter hook postrouting priority 0;\n  queue num 1\n }\n}\n")
		caps.NFTQueue = cmd.Run() == nil
	}
	if _, err := exec.LookPath("iptables"); err == nil {
		err := exec.Command("ip", "netns", "exec", probe, "iptables", "-w", "-t", "mangle", "-A", "POSTROUTING", "-j", "NFQUEUE", "--queue-num", "1").Run()
		caps.IPTablesQueue = err == nil
	}
	if !caps.NFTQueue && !caps.IPTablesQueue {
		return caps, errors.New("dataplane: the kernel has neither the nftables queue expression nor a working iptables NFQUEUE target (install Debian's iptables: hack/dataplane-assets.sh does)")
	}
	return caps, nil
}

func oneLine(out []byte, err error) string {
	s := strings.TrimSpace(strings.ReplaceAll(string(out), "\n", "; "))
	if s == "" {
		return err.Error()
	}
	return s
}

// Options configure Start.
type Options struct {
	// Binary is kube-network-policies; FindBinary when empty.
	Binary string
	// Config is an admin REST config of the control plane.
	Config *rest.Config
	// Dir receives the log, the token and the CA; it must exist.
	Dir string
	// Log, when set, receives a copy of kube-network-policies' log lines.
	Log io.Writer
}

// PodWriter is the user AddHost and AddPod create Pods as (impersonated, in
// the group system:masters). The harness stands in for the workload
// controllers, which netguard trusts to copy a pod template's
// netguard.io/component label; any other writer of that label is refused
// where a workload owns the component (docs/security.md, hand-labelled
// pods). So the cluster's netguard exempts this user: --exempt-usernames.
const PodWriter = "netguard-dataplane"

// podClient is a clientset that acts as PodWriter.
func podClient(cfg *rest.Config) (kubernetes.Interface, error) {
	wc := rest.CopyConfig(cfg)
	wc.Impersonate = rest.ImpersonationConfig{UserName: PodWriter, Groups: []string{"system:masters", "system:authenticated"}}
	return kubernetes.NewForConfig(wc)
}

// Dataplane is a running kube-network-policies with its pod range.
type Dataplane struct {
	// Subnet is the run's pod range, 10.244.Index.0/24.
	Subnet netip.Prefix
	Index  int
	Queue  int
	// NodeName is the Node object every pod of the run is on.
	NodeName string
	// Chain is the iptables chain of the shim, "" when the kernel's nftables
	// queue made it unnecessary.
	Chain string
	// LogPath is kube-network-policies' log (JSON lines, one per verdict).
	LogPath string
	Caps    Capabilities

	cs       kubernetes.Interface
	podCS    kubernetes.Interface
	cmd      *exec.Cmd
	done     chan error
	verdicts *Verdicts
	cancel   context.CancelFunc

	dir      string
	attached bool

	mu    sync.Mutex
	hosts []*Host
	pods  []*Host
}

// Start claims a pod range, starts kube-network-policies and, where needed,
// the queue shim, and returns once it has synced its caches.
func Start(ctx context.Context, o Options) (dp *Dataplane, retErr error) {
	if o.Binary == "" {
		b, err := FindBinary()
		if err != nil {
			return nil, err
		}
		o.Binary = b
	}
	caps, err := Preflight(o.Binary)
	if err != nil {
		return nil, err
	}
	idx, err := claimSubnet()
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(o.Config)
	if err != nil {
		return nil, err
	}
	podCS, err := podClient(o.Config)
	if err != nil {
		return nil, err
	}
	dp = &Dataplane{
		Subnet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(idx), 0}), 24),
		Index:    idx,
		Queue:    1000 + idx,
		NodeName: fmt.Sprintf("dataplane-%d", idx),
		Caps:     caps,
		cs:       cs,
		podCS:    podCS,
		LogPath:  filepath.Join(o.Dir, "kube-network-policies.log"),
		dir:      o.Dir,
	}
	defer func() {
		if retErr != nil {
			_ = dp.Stop()
		}
	}()
	if err := dp.prepareCluster(ctx, o); err != nil {
		return dp, err
	}
	if err := dp.startProcess(ctx, o); err != nil {
		return dp, err
	}
	if !caps.NFTQueue {
		if err := dp.installShim(); err != nil {
			return dp, err
		}
	}
	return dp, nil
}

// claimSubnet picks the first 10.244.N.0/24 that no live run holds and that
// the host does not route, and records this process as its owner. A claim
// whose owner is gone is swept and taken over.
func claimSubnet() (int, error) {
	if err := os.MkdirAll(claimDir, 0o755); err != nil {
		return 0, fmt.Errorf("dataplane: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(claimDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return 0, fmt.Errorf("dataplane: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return 0, fmt.Errorf("dataplane: lock %s: %w", lock.Name(), err)
	}
	routes, _ := exec.Command("ip", "-4", "route", "show", "table", "all").Output()
	for idx := 1; idx <= 250; idx++ {
		path := claimPath(idx)
		if b, err := os.ReadFile(path); err == nil {
			if alive(claimOwner(b)) {
				continue
			}
			sweep(idx, b)
		} else if bytes.Contains(routes, []byte(fmt.Sprintf("10.244.%d.", idx))) {
			continue // someone else's network
		}
		if err := os.WriteFile(path, []byte(fmt.Sprintf("owner %d\n", os.Getpid())), 0o644); err != nil {
			return 0, fmt.Errorf("dataplane: claim %s: %w", path, err)
		}
		return idx, nil
	}
	return 0, errors.New("dataplane: no free 10.244.N.0/24 left for a pod range")
}

func claimPath(idx int) string { return filepath.Join(claimDir, fmt.Sprintf("subnet-%d", idx)) }

func claimOwner(b []byte) int { return claimField(b, "owner") }

func claimField(b []byte, key string) int {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		if k == key {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// sweep removes what a run that died without cleaning up left behind: its
// kube-network-policies (by the process id it recorded, if that process still
// is one), the shim, the network namespaces and host-side veths.
func sweep(idx int, claim []byte) {
	if pid := claimField(claim, "dataplane"); alive(pid) {
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && bytes.Contains(cmdline, []byte(BinaryName)) {
			_ = syscall.Kill(pid, syscall.SIGINT)
		}
	}
	removeShim(chainName(idx), subnetOf(idx))
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), netnsPrefix(idx)) {
				_ = exec.Command("ip", "netns", "del", e.Name()).Run()
			}
		}
	}
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			if strings.HasPrefix(i.Name, vethPrefix(idx)) {
				_ = exec.Command("ip", "link", "del", i.Name).Run()
			}
		}
	}
}

func subnetOf(idx int) string        { return fmt.Sprintf("10.244.%d.0/24", idx) }
func chainName(idx int) string       { return fmt.Sprintf("NETGUARD-DP-%d", idx) }
func netnsPrefix(idx int) string     { return fmt.Sprintf("ngdp-%d-", idx) }
func vethPrefix(idx int) string      { return fmt.Sprintf("ngd%dh", idx) }
func (dp *Dataplane) subnet() string { return dp.Subnet.String() }

// prepareCluster gives kube-network-policies an identity (a ServiceAccount
// with list and watch on what it reads) and the Node its pods are on.
func (dp *Dataplane) prepareCluster(ctx context.Context, o Options) error {
	const ns, name = "kube-system", "kube-network-policies"
	create := func(err error) error {
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
		return err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if _, err := dp.cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{}); create(err) != nil {
		return fmt.Errorf("dataplane: service account: %w", err)
	}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "netguard-dataplane"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods", "namespaces", "nodes"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"get", "list", "watch"}},
		},
	}
	if _, err := dp.cs.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); create(err) != nil {
		return fmt.Errorf("dataplane: cluster role: %w", err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "netguard-dataplane"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: name}},
	}
	if _, err := dp.cs.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); create(err) != nil {
		return fmt.Errorf("dataplane: cluster role binding: %w", err)
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: dp.NodeName, Labels: map[string]string{"kubernetes.io/hostname": dp.NodeName}}}
	if _, err := dp.cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); create(err) != nil {
		return fmt.Errorf("dataplane: node: %w", err)
	}
	expiry := int64((48 * time.Hour).Seconds())
	tok, err := dp.cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("dataplane: token for %s/%s: %w", ns, name, err)
	}
	ca := o.Config.CAData
	if len(ca) == 0 && o.Config.CAFile != "" {
		if ca, err = os.ReadFile(o.Config.CAFile); err != nil {
			return err
		}
	}
	if len(ca) == 0 {
		return errors.New("dataplane: the REST config has no CA for the API server")
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "token"), []byte(tok.Status.Token), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(o.Dir, "ca.crt"), ca, 0o600)
}

// startProcess runs kube-network-policies in a private mount namespace whose
// /run is a tmpfs holding the in-cluster token and CA, since it has no
// --kubeconfig flag. The host's /run is not touched.
func (dp *Dataplane) startProcess(ctx context.Context, o Options) error {
	u, err := url.Parse(o.Config.Host)
	if err != nil {
		return fmt.Errorf("dataplane: API server URL %q: %w", o.Config.Host, err)
	}
	metricsPort, err := lowFreePort()
	if err != nil {
		return err
	}
	const sa = "/run/secrets/kubernetes.io/serviceaccount"
	script := `set -e
mount -t tmpfs -o mode=0755 netguard-dataplane /run
mkdir -p ` + sa + `
cp "$NG_DIR/token" ` + sa + `/token
cp "$NG_DIR/ca.crt" ` + sa + `/ca.crt
exec "$NG_BINARY" "$@"`
	args := []string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "kube-network-policies",
		"--hostname-override=" + dp.NodeName,
		"--nfqueue-id=" + strconv.Itoa(dp.Queue),
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(metricsPort),
		"--logging-format=json",
		"-v=2",
	}
	logFile, err := os.Create(dp.LogPath)
	if err != nil {
		return err
	}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(),
		"KUBERNETES_SERVICE_HOST="+u.Hostname(),
		"KUBERNETES_SERVICE_PORT="+u.Port(),
		"NG_DIR="+o.Dir,
		"NG_BINARY="+o.Binary,
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// No Pdeathsig: it fires when the thread that forked ends, and Go ends
	// threads. Should this process die without Stop, the next run that claims
	// the range stops kube-network-policies by its recorded id and sweeps.
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("dataplane: start kube-network-policies: %w", err)
	}
	logFile.Close()
	dp.cmd = cmd
	dp.done = make(chan error, 1)
	go func() { dp.done <- cmd.Wait() }()
	f, err := os.OpenFile(claimPath(dp.Index), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		fmt.Fprintf(f, "dataplane %d\n", cmd.Process.Pid)
		f.Close()
	}
	tctx, cancel := context.WithCancel(context.Background())
	dp.cancel = cancel
	dp.verdicts, err = TailVerdicts(tctx, dp.LogPath, false, o.Log)
	if err != nil {
		return err
	}
	select {
	case <-dp.verdicts.Synced():
		return nil
	case err := <-dp.done:
		dp.done <- err
		return fmt.Errorf("dataplane: kube-network-policies exited before it synced (%v); log: %s", err, lastLines(dp.LogPath, 5))
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(60 * time.Second):
		return fmt.Errorf("dataplane: kube-network-policies did not sync its caches within 60s; log: %s", lastLines(dp.LogPath, 5))
	}
}

func lastLines(path string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// lowFreePort finds a free loopback port below the ephemeral range, where
// the kernel does not hand out ports to outgoing connections.
func lowFreePort() (int, error) {
	for range 200 {
		p := 20000 + rand.IntN(12000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			l.Close()
			return p, nil
		}
	}
	return 0, errors.New("dataplane: no free port in 20000-32000 for the metrics server")
}

// installShim queues every new connection from or to the run's pod range:
// established and related traffic returns, the rest goes to the queue.
func (dp *Dataplane) installShim() error {
	chain := chainName(dp.Index)
	removeShim(chain, dp.subnet())
	steps := [][]string{
		{"-N", chain},
		{"-A", chain, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"},
		{"-A", chain, "-j", "NFQUEUE", "--queue-num", strconv.Itoa(dp.Queue)},
		{"-A", "POSTROUTING", "-s", dp.subnet(), "-j", chain},
		{"-A", "POSTROUTING", "-d", dp.subnet(), "-j", chain},
	}
	for _, s := range steps {
		if out, err := exec.Command("iptables", append([]string{"-w", "-t", "mangle"}, s...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("dataplane: iptables %s: %s", strings.Join(s, " "), oneLine(out, err))
		}
	}
	dp.Chain = chain
	return nil
}

func removeShim(chain, subnet string) {
	ipt := func(args ...string) error {
		return exec.Command("iptables", append([]string{"-w", "-t", "mangle"}, args...)...).Run()
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		return
	}
	for _, dir := range []string{"-s", "-d"} {
		for range 10 {
			if ipt("-D", "POSTROUTING", dir, subnet, "-j", chain) != nil {
				break
			}
		}
	}
	_ = ipt("-F", chain)
	_ = ipt("-X", chain)
}

// Verdicts returns the verdict stream of the running dataplane.
func (dp *Dataplane) Verdicts() *Verdicts { return dp.verdicts }

// Clientset is the admin clientset the dataplane was started with.
func (dp *Dataplane) Clientset() kubernetes.Interface { return dp.cs }

// Stop removes the hosts and pods, then the shim (before the process, or
// pod traffic would stay queued with nobody reading), stops
// kube-network-policies with SIGINT and releases the pod range.
func (dp *Dataplane) Stop() error {
	if dp.attached {
		return nil
	}
	var errs []error
	dp.mu.Lock()
	hosts := append(append([]*Host(nil), dp.pods...), dp.hosts...)
	dp.pods, dp.hosts = nil, nil
	dp.mu.Unlock()
	for _, h := range hosts {
		if err := h.Delete(context.Background()); err != nil {
			errs = append(errs, err)
		}
	}
	dp.stopListeners()
	if dp.Chain != "" {
		removeShim(dp.Chain, dp.subnet())
	}
	if dp.cmd != nil && dp.cmd.Process != nil {
		_ = dp.cmd.Process.Signal(os.Interrupt)
		select {
		case <-dp.done:
		case <-time.After(15 * time.Second):
			_ = dp.cmd.Process.Kill()
			<-dp.done
			errs = append(errs, errors.New("dataplane: kube-network-policies did not stop within 15s of SIGINT"))
		}
	}
	if dp.cancel != nil {
		dp.cancel()
	}
	if dp.Index > 0 {
		sweep(dp.Index, nil)
		_ = os.Remove(claimPath(dp.Index))
	}
	return errors.Join(errs...)
}
