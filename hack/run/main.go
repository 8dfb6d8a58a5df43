// Command run is `make run`: a real local control plane with netguard's
// webhooks registered, for a person to try netguard with kubectl.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/netguard/netguard/e2e/cluster"
	"github.com/netguard/netguard/e2e/dataplane"
)

func main() {
	var (
		binary = flag.String("netguard", "bin/netguard", "netguard binary to run")
		assets = flag.String("assets", "bin/k8s", "directory with etcd, kube-apiserver, kube-controller-manager and kubectl")
		crds   = flag.String("crds", "charts/netguard/crds", "CRDs to install")
		logTo  = flag.String("log", "", "file for netguard's and the controller manager's logs (default: under the state dir)")
		knp    = flag.String("dataplane", "bin/dataplane/kube-network-policies", "kube-network-policies binary for real packets; empty: no dataplane")
		helper = flag.String("dataplane-helper", "bin/netguard-dataplane", "the pod and probe helper (hack/dataplane) the tour prints")
	)
	flag.Parse()
	if err := run(*binary, *assets, *crds, *logTo, *knp, *helper); err != nil {
		fmt.Fprintf(os.Stderr, "make run: %v\n", err)
		os.Exit(1)
	}
}

// reportCRD and reportFormats turn on the background audit's policy reports.
const (
	reportCRD     = "charts/netguard/files/crds/openreports.io_reports.yaml"
	reportFormats = "openreports"
)

func run(binary, assets, crds, logTo, knp, helper string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	var crdDirs []string
	if _, err := os.Stat(crds); err == nil {
		crdDirs = append(crdDirs, abs(crds))
	}
	// The background audit writes openreports.io Reports (docs/audit.md).
	if _, err := os.Stat(reportCRD); err == nil {
		crdDirs = append(crdDirs, abs(reportCRD))
	}
	fmt.Fprintln(os.Stderr, "starting etcd, kube-apiserver and kube-controller-manager ...")
	start := time.Now()
	c, err := cluster.Start(ctx, cluster.Options{AssetsDir: abs(assets), CRDDirs: crdDirs, ControllerManager: true, AuditLog: true})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(os.Stderr, "stopping the control plane and removing", c.Dir)
		if err := c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "make run: stop:", err)
		}
	}()
	if logTo == "" {
		logTo = filepath.Join(c.Dir, "netguard.log")
	}
	logFile, err := os.Create(logTo)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Fprintln(os.Stderr, "starting netguard serve ...")
	ng, err := c.StartNetguard(ctx, cluster.NetguardOptions{Binary: abs(binary), Args: []string{"--log-format=console", "--audit-reports=" + reportFormats, "--exempt-usernames=" + dataplane.PodWriter}, Log: logFile})
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, logTo)
	}
	defer func() {
		if err := ng.Stop(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "make run: stop netguard:", err)
		}
	}()

	// Real packets where the machine allows: kube-network-policies and pods
	// as network namespaces (docs/dataplane.md).
	tour := "\n(no dataplane: " + "%s" + ")\n"
	dpNote := ""
	if knp != "" {
		dpDir := filepath.Join(c.Dir, "dataplane")
		dp, err := startDataplane(ctx, c, abs(knp), dpDir)
		if err != nil {
			dpNote = err.Error()
		} else {
			defer func() {
				fmt.Fprintln(os.Stderr, "stopping the dataplane")
				if err := dp.Stop(); err != nil {
					fmt.Fprintln(os.Stderr, "make run: stop dataplane:", err)
				}
			}()
			tour = dataplaneTour(dp, abs(helper))
		}
	} else {
		dpNote = "-dataplane is empty"
	}
	if dpNote != "" {
		tour = fmt.Sprintf(tour, dpNote)
	}

	fmt.Printf(`
netguard is running against a local control plane (ready in %s).

KUBECONFIG=%s
WEBHOOK=%s

Try it (in another shell):
  export KUBECONFIG=%s
  alias kubectl=%s
  kubectl create namespace team-a
  kubectl label namespace team-a netguard.io/enforce=baseline
  # allowed: pods labelled app=frontend reach app=backend on TCP 8080 (egress and ingress)
  kubectl -n team-a apply -f docs/examples/allow-frontend-to-backend.yaml
  kubectl -n team-a apply -f docs/examples/frontend-backend.yaml
  # ask netguard what the live policies allow, the namespace's default-deny included
  kubectl -n team-a get deployments,networkpolicies -o yaml | bin/netguard reach -f - --from team-a/frontend --to team-a/backend --port 8080
  # denied: ingress from anywhere bypasses default-deny
  kubectl -n team-a apply -f docs/examples/allow-from-anywhere.yaml
  kubectl -n team-a apply --dry-run=server -f docs/examples/allow-from-anywhere.yaml
  # injection: annotated Deployments get their NetworkPolicies at admission
  kubectl -n team-a apply --dry-run=server -f docs/examples/annotated-deployments.yaml
  kubectl -n team-a apply -f docs/examples/annotated-deployments.yaml
  kubectl -n team-a get networkpolicies
  # the namespace baseline and the generated policies are netguard's alone,
  # even for alice, the namespace's owner (the built-in admin role)
  kubectl -n team-a create rolebinding alice-admin --clusterrole=admin --user=alice
  kubectl -n team-a --as=alice delete networkpolicy netguard-default-deny
  # the background audit's findings as an openreports.io Report (every minute)
  kubectl -n team-a get reports.openreports.io netguard -o yaml
  # leaving default-deny is a label: netguard removes the baseline at privileged
  kubectl label namespace team-a netguard.io/enforce=privileged --overwrite

%s
Logs: %s
Metrics: %s
Ctrl-C stops everything and removes %s
`, time.Since(start).Round(time.Second), c.KubeconfigPath, ng.WebhookURL, c.KubeconfigPath, c.KubectlPath, tour, logTo, ng.MetricsURL, c.Dir)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "\nshutting down ...")
	return nil
}

func startDataplane(ctx context.Context, c *cluster.Cluster, knp, dir string) (*dataplane.Dataplane, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	fmt.Fprintln(os.Stderr, "starting the dataplane (kube-network-policies) ...")
	dp, err := dataplane.Start(ctx, dataplane.Options{Binary: knp, Config: c.Config, Dir: dir})
	if err != nil {
		return nil, err
	}
	if err := dp.SaveState(c.KubeconfigPath); err != nil {
		_ = dp.Stop()
		return nil, err
	}
	// The cluster DNS that every guarded namespace's netguard-allow-dns opens.
	dns, err := dp.AddPod(ctx, dataplane.PodSpec{Namespace: "kube-system", Name: "coredns", Labels: map[string]string{"k8s-app": "kube-dns"}})
	if err == nil {
		err = dns.Listen(53, "UDP")
	}
	if err == nil {
		err = dns.Listen(53, "TCP")
	}
	if err != nil {
		_ = dp.Stop()
		return nil, err
	}
	return dp, nil
}

func dataplaneTour(dp *dataplane.Dataplane, helper string) string {
	return fmt.Sprintf(`
Real packets (kube-network-policies decides each connection; pods are network
namespaces in %s; see docs/dataplane.md):
  export %s=%s
  alias dataplane=%s
  # a pod for each component, with its pod template's labels and ports
  dataplane pod team-a deployment/web -listen 9999
  dataplane pod team-a deployment/api -listen 9090
  # web declared api:8080: connected; everything else: blocked
  dataplane probe team-a/web team-a/api 8080
  dataplane probe team-a/web team-a/api 9090
  dataplane probe team-a/api team-a/web 9999
  # open one more path: web depends on api's 9090 too, then probe again
  kubectl -n team-a annotate deployment web --overwrite netguard.io/depends-on='api:8080,api:9090'
  dataplane probe team-a/web team-a/api 9090
  # DNS to the cluster DNS pods is open in every guarded namespace
  dataplane probe team-a/web kube-system/coredns 53/udp
Dataplane log (a line per verdict): %s
`, dp.Subnet, dataplane.StateEnv, dp.StatePath(), helper, dp.LogPath)
}
