// Package e2e runs netguard against a real kube-apiserver, etcd and
// kube-controller-manager built from source by `make envtest-assets`.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/netguard/netguard/e2e/cluster"
)

var (
	testCluster *cluster.Cluster
	netguardBin string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tmp, err := os.MkdirTemp("", "netguard-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	netguardBin = filepath.Join(tmp, "netguard")
	build := exec.CommandContext(ctx, "go", "build", "-o", netguardBin, "../cmd/netguard")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build netguard:", err)
		return 1
	}
	crds, _ := filepath.Abs("../charts/netguard/crds")
	var crdDirs []string
	if _, err := os.Stat(crds); err == nil {
		crdDirs = []string{crds}
	}
	testCluster, err = cluster.Start(ctx, cluster.Options{CRDDirs: crdDirs, ControllerManager: true, AuditLog: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start control plane:", err)
		return 1
	}
	code := m.Run()
	if err := testCluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop control plane:", err)
	}
	return code
}

// testLog is where a test's netguard writes; it is printed when the test fails.
type testLog struct {
	t   *testing.T
	buf *lockedBuffer
}

func newTestLog(t *testing.T) *testLog {
	l := &testLog{t: t, buf: &lockedBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("netguard log:\n%s", l.buf.String())
		}
	})
	return l
}

// startNetguard runs netguard for one test and stops it (webhooks first) at cleanup.
func startNetguard(t *testing.T, args ...string) *cluster.Netguard {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	l := newTestLog(t)
	ng, err := testCluster.StartNetguard(ctx, cluster.NetguardOptions{Binary: netguardBin, Args: args, Log: l.buf})
	if err != nil {
		t.Fatalf("start netguard: %v\n%s", err, l.buf.String())
	}
	t.Cleanup(func() {
		if err := ng.Stop(context.Background()); err != nil {
			t.Errorf("stop netguard: %v", err)
		}
	})
	return ng
}
