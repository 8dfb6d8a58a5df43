package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// Host is a network namespace with one routed veth pair and one address of
// the run's pod range: a pod when Pod is set, otherwise an address outside
// the pod network (an "external" service the tests stand up locally).
type Host struct {
	// Name is "NAMESPACE/NAME" for a pod, the host's name otherwise.
	Name  string
	IP    netip.Addr
	NetNS string // under /run/netns
	Veth  string // host side
	// Pod is the Pod object, for a pod.
	Pod *corev1.Pod

	dp       *Dataplane
	mu       sync.Mutex
	closers  map[string]io.Closer
	nextPort int
	deleted  bool
}

// AddHost creates a network namespace with an address that no Pod has: an
// address outside the pod network, as far as NetworkPolicy is concerned.
func (dp *Dataplane) AddHost(ctx context.Context, name string) (*Host, error) {
	h, err := dp.newHost(name)
	if err != nil {
		return nil, err
	}
	dp.mu.Lock()
	dp.hosts = append(dp.hosts, h)
	dp.mu.Unlock()
	return h, nil
}

// PodSpec describes a pod to create: the labels and container ports are what
// NetworkPolicies select and resolve named ports against.
type PodSpec struct {
	Namespace, Name string
	Labels          map[string]string
	Ports           []corev1.ContainerPort
}

// AddPod creates a network namespace for the pod, then the Pod object on the
// run's Node, and reports it Running with its IP through the status
// subresource, as a kubelet would.
func (dp *Dataplane) AddPod(ctx context.Context, spec PodSpec) (*Host, error) {
	h, err := dp.newHost(spec.Namespace + "-" + spec.Name)
	if err != nil {
		return nil, err
	}
	h.Name = spec.Namespace + "/" + spec.Name
	dp.mu.Lock()
	dp.pods = append(dp.pods, h)
	dp.mu.Unlock()
	// The Node is the pod's controller, as for a kubelet's mirror pod: no
	// workload controller adopts (and deletes) a pod another controller owns,
	// and the garbage collector keeps it while the Node exists.
	node, err := dp.cs.CoreV1().Nodes().Get(ctx, dp.NodeName, metav1.GetOptions{})
	if err != nil {
		return h, fmt.Errorf("dataplane: node %s: %w", dp.NodeName, err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: spec.Namespace, Name: spec.Name, Labels: spec.Labels,
			Annotations:     map[string]string{"netguard.io/dataplane-netns": h.NetNS},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID, Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{
			NodeName:                      dp.NodeName,
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To(int64(0)),
			Containers: []corev1.Container{{
				Name:  "netns",
				Image: "netguard.local/netns-pod",
				Ports: spec.Ports,
			}},
		},
	}
	pods := dp.podCS.CoreV1().Pods(spec.Namespace)
	// The service account admission plugin needs the namespace's "default"
	// ServiceAccount, which the controller manager creates a moment after the
	// namespace (or not at all, where it does not run).
	deadline := time.Now().Add(30 * time.Second)
	for {
		created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
		if err == nil {
			pod = created
			break
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "serviceaccount") {
			return h, fmt.Errorf("dataplane: create pod %s: %w", h.Name, err)
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: spec.Namespace, Name: "default"}}
		_, _ = dp.cs.CoreV1().ServiceAccounts(spec.Namespace).Create(ctx, sa, metav1.CreateOptions{})
		time.Sleep(100 * time.Millisecond)
	}
	h.Pod = pod
	pod.Status = corev1.PodStatus{
		Phase:      corev1.PodRunning,
		PodIP:      h.IP.String(),
		PodIPs:     []corev1.PodIP{{IP: h.IP.String()}},
		StartTime:  ptr.To(metav1.Now()),
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}},
	}
	updated, err := pods.UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	if err != nil {
		return h, fmt.Errorf("dataplane: pod %s status: %w", h.Name, err)
	}
	h.Pod = updated
	return h, nil
}

func (dp *Dataplane) newHost(name string) (*Host, error) {
	i, err := dp.allocate()
	if err != nil {
		return nil, err
	}
	base := dp.Subnet.Addr().As4()
	ip := netip.AddrFrom4([4]byte{base[0], base[1], base[2], byte(2 * i)})
	gw := netip.AddrFrom4([4]byte{base[0], base[1], base[2], byte(2*i + 1)})
	h := &Host{
		Name:     name,
		IP:       ip,
		NetNS:    netnsPrefix(dp.Index) + sanitize(name),
		Veth:     vethPrefix(dp.Index) + strconv.Itoa(i),
		dp:       dp,
		closers:  map[string]io.Closer{},
		nextPort: 61000,
	}
	if len(h.NetNS) > 200 {
		h.NetNS = h.NetNS[:200]
	}
	h.NetNS += "-" + strconv.Itoa(i)
	ipc := func(args ...string) error {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("dataplane: ip %s: %s", strings.Join(args, " "), oneLine(out, err))
		}
		return nil
	}
	steps := [][]string{
		{"netns", "add", h.NetNS},
		{"link", "add", h.Veth, "type", "veth", "peer", "name", "eth0", "netns", h.NetNS},
		{"-n", h.NetNS, "link", "set", "lo", "up"},
		{"-n", h.NetNS, "addr", "add", ip.String() + "/32", "dev", "eth0"},
		{"-n", h.NetNS, "link", "set", "eth0", "up"},
		{"-n", h.NetNS, "route", "add", gw.String() + "/32", "dev", "eth0", "scope", "link"},
		{"-n", h.NetNS, "route", "add", "default", "via", gw.String(), "dev", "eth0", "src", ip.String()},
		{"addr", "add", gw.String() + "/32", "dev", h.Veth},
		{"link", "set", h.Veth, "up"},
		{"route", "add", ip.String() + "/32", "dev", h.Veth, "src", gw.String()},
	}
	for _, s := range steps {
		if err := ipc(s...); err != nil {
			_ = h.teardown() // the setup error is the one to report
			return nil, err
		}
	}
	// Forwarding on this interface only: the host's own forwarding setting
	// stays as it is. IPv6 stays off, so the pod sends nothing it was not
	// asked to.
	for file, val := range map[string]string{
		"/proc/sys/net/ipv4/conf/" + h.Veth + "/forwarding":   "1",
		"/proc/sys/net/ipv6/conf/" + h.Veth + "/disable_ipv6": "1",
	} {
		if err := os.WriteFile(file, []byte(val), 0o644); err != nil {
			_ = h.teardown() // the setup error is the one to report
			return nil, fmt.Errorf("dataplane: %s: %w", file, err)
		}
	}
	return h, nil
}

// allocate hands out host numbers; the counter lives in the state directory,
// so that the helper commands of `make run` share it with the process that
// started the dataplane.
func (dp *Dataplane) allocate() (int, error) {
	lock, err := os.OpenFile(filepath.Join(dp.dir, "hosts.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return 0, err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return 0, err
	}
	counter := filepath.Join(dp.dir, "hosts.next")
	i := 1
	if b, err := os.ReadFile(counter); err == nil {
		i, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if i < 1 || i > 120 {
		return 0, errors.New("dataplane: more than 120 hosts in one run")
	}
	return i, os.WriteFile(counter, []byte(strconv.Itoa(i+1)), 0o600)
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// Delete removes the Pod object (at once: there is no kubelet to confirm a
// graceful deletion), the listeners, the network namespace and the veth.
func (h *Host) Delete(ctx context.Context) error {
	h.mu.Lock()
	if h.deleted {
		h.mu.Unlock()
		return nil
	}
	h.deleted = true
	h.mu.Unlock()
	var errs []error
	if h.Pod != nil {
		err := h.dp.cs.CoreV1().Pods(h.Pod.Namespace).Delete(ctx, h.Pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, h.teardown())
	return errors.Join(errs...)
}

func (h *Host) teardown() error {
	h.mu.Lock()
	for k, c := range h.closers {
		_ = c.Close()
		delete(h.closers, k)
	}
	h.mu.Unlock()
	var errs []error
	if out, err := exec.Command("ip", "link", "del", h.Veth).CombinedOutput(); err != nil && !strings.Contains(string(out), "Cannot find device") {
		errs = append(errs, fmt.Errorf("dataplane: ip link del %s: %s", h.Veth, oneLine(out, err)))
	}
	if out, err := exec.Command("ip", "netns", "del", h.NetNS).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
		errs = append(errs, fmt.Errorf("dataplane: ip netns del %s: %s", h.NetNS, oneLine(out, err)))
	}
	return errors.Join(errs...)
}

// InNetNS runs f on an OS thread that has entered the network namespace at
// path (/run/netns/NAME). Sockets f creates stay in that namespace for their
// whole life. Afterwards the thread goes back to its own namespace; if it
// cannot, it is never handed back to the Go scheduler and ends with f.
func InNetNS(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("dataplane: open own network namespace: %w", err)
			return
		}
		defer unix.Close(own)
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("dataplane: open %s: %w", path, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("dataplane: enter %s: %w", path, err)
			return
		}
		err = f()
		// Only a thread back in its own namespace may run other goroutines;
		// otherwise it stays locked and the runtime ends it with this one.
		if unix.Setns(own, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

func (h *Host) netnsPath() string { return "/run/netns/" + h.NetNS }

// Listen makes the host accept TCP connections on port, or echo UDP
// datagrams, until it is deleted. Listening twice is a no-op.
func (h *Host) Listen(port int, proto string) error {
	key := strconv.Itoa(port) + "/" + proto
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.deleted {
		return fmt.Errorf("dataplane: host %s is deleted", h.Name)
	}
	if h.closers == nil {
		h.closers = map[string]io.Closer{}
	}
	if _, ok := h.closers[key]; ok {
		return nil
	}
	addr := net.JoinHostPort(h.IP.String(), strconv.Itoa(port))
	return InNetNS(h.netnsPath(), func() error {
		switch proto {
		case "TCP":
			l, err := net.Listen("tcp4", addr)
			if err != nil {
				return err
			}
			h.closers[key] = l
			go serveTCP(l)
		case "UDP":
			c, err := net.ListenPacket("udp4", addr)
			if err != nil {
				return err
			}
			h.closers[key] = c
			go serveUDP(c)
		default:
			return fmt.Errorf("dataplane: protocol %q: only TCP and UDP", proto)
		}
		return nil
	})
}

func serveTCP(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		_, _ = c.Write([]byte("netguard-dataplane\n"))
		_ = c.Close()
	}
}

func serveUDP(c net.PacketConn) {
	buf := make([]byte, 512)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		_, _ = c.WriteTo(buf[:n], from)
	}
}

// sourcePort returns the next source port for a probe from h. Ports above
// the ephemeral range keep every probe's flow unique, so its verdict can be
// told from any other's.
func (h *Host) sourcePort() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.nextPort
	h.nextPort++
	if h.nextPort > 65000 {
		h.nextPort = 61000
	}
	return p
}
