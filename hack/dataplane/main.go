// Command dataplane works with the real NetworkPolicy dataplane that
// `make run` starts (kube-network-policies, pods as network namespaces): it
// creates a pod for a workload and probes a connection between two pods. It
// does not use netguard; it only shows what the cluster's policies do to
// packets. See docs/dataplane.md.
//
//	dataplane pod NAMESPACE KIND/NAME [-name POD] [-listen PORT[/udp],...]
//	dataplane probe NAMESPACE/POD NAMESPACE/POD PORT[/udp]
//	dataplane delete NAMESPACE/POD
//
// It finds the running dataplane through $NETGUARD_DATAPLANE, which
// `make run` prints.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/netguard/netguard/e2e/dataplane"
)

const usage = `usage:
  dataplane pod NAMESPACE KIND/NAME [-name POD] [-listen PORT[/udp],...]
      a pod of the workload (its pod template's labels and container ports),
      listening on its container ports and the -listen ones
  dataplane probe NAMESPACE/POD NAMESPACE/POD PORT[/udp]
      open one connection; exit 0 connected, 1 blocked, 2 error
  dataplane delete NAMESPACE/POD
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	code := 0
	switch os.Args[1] {
	case "pod":
		err = podCmd(ctx, os.Args[2:])
	case "probe":
		code, err = probeCmd(ctx, os.Args[2:])
	case "delete":
		err = deleteCmd(ctx, os.Args[2:])
	case "listen":
		err = listenCmd(ctx, os.Args[2:])
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dataplane:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func attach(ctx context.Context) (*dataplane.Dataplane, error) {
	path := os.Getenv(dataplane.StateEnv)
	if path == "" {
		return nil, fmt.Errorf("%s is not set: start `make run` and export the %s=... line it prints", dataplane.StateEnv, dataplane.StateEnv)
	}
	return dataplane.Attach(ctx, path)
}

func splitRef(s string) (string, string, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" {
		return "", "", fmt.Errorf("%q: must be NAMESPACE/POD", s)
	}
	return ns, name, nil
}

func podCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pod", flag.ContinueOnError)
	name := fs.String("name", "", "pod name (default: the workload's name)")
	listen := fs.String("listen", "", "more ports to listen on, e.g. 9999,53/udp")
	if len(args) < 2 {
		return errors.New("pod NAMESPACE KIND/NAME [-name POD] [-listen PORT[/udp],...]")
	}
	ns, ref := args[0], args[1]
	if err := fs.Parse(args[2:]); err != nil {
		return err
	}
	kind, wname, ok := strings.Cut(ref, "/")
	if !ok {
		return fmt.Errorf("%q: must be KIND/NAME, e.g. deployment/web", ref)
	}
	if *name == "" {
		*name = wname
	}
	dp, err := attach(ctx)
	if err != nil {
		return err
	}
	spec, err := dataplane.PodSpecForWorkload(ctx, dp.Clientset(), kind, ns, wname, *name)
	if err != nil {
		return err
	}
	h, err := dp.AddPod(ctx, spec)
	if err != nil {
		if h != nil {
			_ = h.Delete(ctx)
		}
		return err
	}
	ports := dataplane.ContainerPorts(h.Pod)
	for _, p := range strings.Split(*listen, ",") {
		if p = strings.TrimSpace(p); p != "" {
			if !strings.Contains(p, "/") {
				p += "/TCP"
			}
			ports = append(ports, strings.ToUpper(p))
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, append([]string{"listen", h.NetNS, h.IP.String()}, ports...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := dp.RecordListener(h.NetNS, cmd.Process.Pid); err != nil {
		return err
	}
	_ = cmd.Process.Release()
	fmt.Printf("pod %s at %s (network namespace %s), labels %v, listening on %s\n", h.Name, h.IP, h.NetNS, h.Pod.Labels, strings.Join(ports, " "))
	return nil
}

// listenCmd is started by podCmd and runs until Ctrl-C of `make run` ends it.
func listenCmd(ctx context.Context, args []string) error {
	if len(args) < 2 {
		return errors.New("listen needs NETNS, IP and at least one PORT/PROTO")
	}
	ip, err := netip.ParseAddr(args[1])
	if err != nil {
		return err
	}
	h := &dataplane.Host{Name: args[0], IP: ip, NetNS: args[0]}
	for _, p := range args[2:] {
		num, proto, _ := strings.Cut(p, "/")
		port, err := strconv.Atoi(num)
		if err != nil {
			return fmt.Errorf("port %q", p)
		}
		if err := h.Listen(port, proto); err != nil {
			return err
		}
	}
	<-ctx.Done()
	return nil
}

func probeCmd(ctx context.Context, args []string) (int, error) {
	if len(args) != 3 {
		return 2, errors.New("probe NAMESPACE/POD NAMESPACE/POD PORT[/udp]")
	}
	fromNS, fromName, err := splitRef(args[0])
	if err != nil {
		return 2, err
	}
	toNS, toName, err := splitRef(args[1])
	if err != nil {
		return 2, err
	}
	num, proto, _ := strings.Cut(args[2], "/")
	port, err := strconv.Atoi(num)
	if err != nil || port < 1 || port > 65535 {
		return 2, fmt.Errorf("port %q: must be 1-65535, optionally /tcp or /udp", args[2])
	}
	if proto == "" {
		proto = "TCP"
	}
	proto = strings.ToUpper(proto)
	dp, err := attach(ctx)
	if err != nil {
		return 2, err
	}
	from, err := dp.FindPod(ctx, fromNS, fromName)
	if err != nil {
		return 2, err
	}
	to, err := dp.FindPod(ctx, toNS, toName)
	if err != nil {
		return 2, err
	}
	obs, err := from.Probe(ctx, dp.Verdicts(), to.IP, port, proto)
	if err != nil {
		return 2, err
	}
	fmt.Printf("%s -> %s on %d/%s: %s\n", from.Name, to.Name, port, proto, obs)
	if !obs.Connected {
		return 1, nil
	}
	return 0, nil
}

func deleteCmd(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("delete NAMESPACE/POD")
	}
	ns, name, err := splitRef(args[0])
	if err != nil {
		return err
	}
	dp, err := attach(ctx)
	if err != nil {
		return err
	}
	h, err := dp.FindPod(ctx, ns, name)
	if err != nil {
		return err
	}
	if err := dp.DeletePod(ctx, h); err != nil {
		return err
	}
	fmt.Printf("pod %s deleted\n", h.Name)
	return nil
}
