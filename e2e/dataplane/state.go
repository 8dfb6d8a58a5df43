package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// StateEnv names the state file of a running dataplane, for the helper
// commands (hack/dataplane) that `make run` prints.
const StateEnv = "NETGUARD_DATAPLANE"

// state is what a helper command needs to join a running dataplane.
type state struct {
	Index      int    `json:"index"`
	Queue      int    `json:"queue"`
	NodeName   string `json:"nodeName"`
	Chain      string `json:"chain"`
	LogPath    string `json:"logPath"`
	Kubeconfig string `json:"kubeconfig"`
}

// StatePath is where SaveState writes.
func (dp *Dataplane) StatePath() string { return filepath.Join(dp.dir, "state.json") }

// SaveState records the dataplane for Attach, with the kubeconfig the helper
// commands use.
func (dp *Dataplane) SaveState(kubeconfig string) error {
	b, err := json.MarshalIndent(state{Index: dp.Index, Queue: dp.Queue, NodeName: dp.NodeName, Chain: dp.Chain, LogPath: dp.LogPath, Kubeconfig: kubeconfig}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(dp.StatePath(), b, 0o600)
}

// Attach joins the dataplane whose state file is at path: it can add and
// delete pods and probe, and reads verdicts from the log's current end.
// Stop on an attached dataplane stops nothing.
func Attach(ctx context.Context, path string) (*Dataplane, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dataplane state: %w (is `make run` running? it prints %s=...)", err, StateEnv)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("dataplane state %s: %w", path, err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", st.Kubeconfig)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	podCS, err := podClient(cfg)
	if err != nil {
		return nil, err
	}
	dp := &Dataplane{
		Subnet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 244, byte(st.Index), 0}), 24),
		Index:    st.Index,
		Queue:    st.Queue,
		NodeName: st.NodeName,
		Chain:    st.Chain,
		LogPath:  st.LogPath,
		cs:       cs,
		podCS:    podCS,
		dir:      filepath.Dir(path),
		attached: true,
	}
	dp.verdicts, err = TailVerdicts(ctx, st.LogPath, true, nil)
	if err != nil {
		return nil, err
	}
	return dp, nil
}

// FindPod returns the dataplane pod namespace/name, from its Pod object.
func (dp *Dataplane) FindPod(ctx context.Context, namespace, name string) (*Host, error) {
	pod, err := dp.cs.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	netns := pod.Annotations["netguard.io/dataplane-netns"]
	ip, err := netip.ParseAddr(pod.Status.PodIP)
	if netns == "" || err != nil {
		return nil, fmt.Errorf("pod %s/%s is not a dataplane pod (no netns annotation or no IP); create it with the pod command", namespace, name)
	}
	return &Host{Name: namespace + "/" + name, IP: ip, NetNS: netns, Pod: pod, dp: dp, nextPort: 61000 + int(uint16(os.Getpid()))%4000}, nil
}

// ListenersDir holds the process ids of listener processes started for pods
// by the helper commands; Stop ends them.
func (dp *Dataplane) ListenersDir() string { return filepath.Join(dp.dir, "listeners") }

// RecordListener notes a listener process of the pod's network namespace.
func (dp *Dataplane) RecordListener(netns string, pid int) error {
	if err := os.MkdirAll(dp.ListenersDir(), 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dp.ListenersDir(), netns), []byte(strconv.Itoa(pid)), 0o600)
}

// stopListeners ends the listener processes that helper commands started,
// each by the id it recorded, and only if it still runs this program's
// listen command.
func (dp *Dataplane) stopListeners() {
	entries, err := os.ReadDir(dp.ListenersDir())
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(dp.ListenersDir(), e.Name())
		b, _ := os.ReadFile(p)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(cmdline), "listen") {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
		_ = os.Remove(p)
	}
}

// DeletePod removes a pod made by a helper command: its listener process,
// Pod object, network namespace and veth.
func (dp *Dataplane) DeletePod(ctx context.Context, h *Host) error {
	p := filepath.Join(dp.ListenersDir(), h.NetNS)
	if b, err := os.ReadFile(p); err == nil {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
		_ = os.Remove(p)
	}
	if h.Veth == "" {
		h.Veth = vethFor(h.NetNS)
	}
	h.closers = nil
	return h.Delete(ctx)
}

// vethFor finds the host side of the pod's veth from its number, the
// netns name's last part.
func vethFor(netns string) string {
	i := strings.LastIndexByte(netns, '-')
	idx := strings.TrimPrefix(netns, "ngdp-")
	idx, _, _ = strings.Cut(idx, "-")
	if i < 0 {
		return ""
	}
	return "ngd" + idx + "h" + netns[i+1:]
}

// ContainerPorts lists the pod's TCP and UDP container ports as "8080/TCP".
func ContainerPorts(pod *corev1.Pod) []string {
	var out []string
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			proto := string(p.Protocol)
			if proto == "" {
				proto = "TCP"
			}
			if proto == "TCP" || proto == "UDP" {
				out = append(out, strconv.Itoa(int(p.ContainerPort))+"/"+proto)
			}
		}
	}
	return out
}
