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
)

func main() {
	var (
		binary = flag.String("netguard", "bin/netguard", "netguard binary to run")
		assets = flag.String("assets", "bin/k8s", "directory with etcd, kube-apiserver, kube-controller-manager and kubectl")
		crds   = flag.String("crds", "charts/netguard/crds", "CRDs to install")
		logTo  = flag.String("log", "", "file for netguard's and the controller manager's logs (default: under the state dir)")
	)
	flag.Parse()
	if err := run(*binary, *assets, *crds, *logTo); err != nil {
		fmt.Fprintf(os.Stderr, "make run: %v\n", err)
		os.Exit(1)
	}
}

// reportCRD and reportFormats turn on the background audit's policy reports.
const (
	reportCRD     = "charts/netguard/files/crds/openreports.io_reports.yaml"
	reportFormats = "openreports"
)

func run(binary, assets, crds, logTo string) error {
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
	ng, err := c.StartNetguard(ctx, cluster.NetguardOptions{Binary: abs(binary), Args: []string{"--log-format=console", "--audit-reports=" + reportFormats}, Log: logFile})
	if err != nil {
		return fmt.Errorf("%w (log: %s)", err, logTo)
	}
	defer func() {
		if err := ng.Stop(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "make run: stop netguard:", err)
		}
	}()

	fmt.Printf(`
netguard is running against a local control plane (ready in %s).

KUBECONFIG=%s
WEBHOOK=%s

Try it (in another shell):
  export KUBECONFIG=%s
  alias kubectl=%s
  kubectl create namespace team-a
  kubectl label namespace team-a netguard.io/enforce=baseline
  # allowed: pods of team-a talk to each other on 8080
  kubectl -n team-a apply -f docs/examples/allow-frontend-to-backend.yaml
  # denied: ingress from anywhere bypasses default-deny
  kubectl -n team-a apply -f docs/examples/allow-from-anywhere.yaml
  kubectl -n team-a apply --dry-run=server -f docs/examples/allow-from-anywhere.yaml
  # injection: annotated Deployments get their NetworkPolicies at admission
  kubectl -n team-a apply --dry-run=server -f docs/examples/annotated-deployments.yaml
  kubectl -n team-a apply -f docs/examples/annotated-deployments.yaml
  kubectl -n team-a get networkpolicies
  # the namespace baseline and the generated policies are netguard's alone
  kubectl -n team-a delete networkpolicy netguard-default-deny
  # the background audit's findings as an openreports.io Report
  kubectl -n team-a get reports.openreports.io netguard -o yaml

Logs: %s
Metrics: %s
Ctrl-C stops everything and removes %s
`, time.Since(start).Round(time.Second), c.KubeconfigPath, ng.WebhookURL, c.KubeconfigPath, c.KubectlPath, logTo, ng.MetricsURL, c.Dir)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "\nshutting down ...")
	return nil
}
