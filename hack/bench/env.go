package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/netguard/netguard/e2e/cluster"
)

// machine describes where the numbers were taken.
type machine struct {
	CPUs     int
	CPUModel string
	MemTotal string
	Kernel   string
	LoadAvg  string // at the start of the run
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), CPUModel: "unknown", MemTotal: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				f := strings.Fields(line)
				if len(f) >= 2 {
					if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
						m.MemTotal = fmt.Sprintf("%.1f GiB", kb/1024/1024)
					}
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.LoadAvg = loadAvg()
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// versions of everything measured.
type versions struct {
	Go, KubeAPIServer, Etcd, ClientGo, ControllerRuntime, Netguard string
}

func describeVersions(repo, assets string) versions {
	v := versions{Go: runtime.Version()}
	if out, err := exec.Command("go", "version").Output(); err == nil {
		v.Go = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	if out, err := exec.Command(filepath.Join(assets, "kube-apiserver"), "--version").Output(); err == nil {
		v.KubeAPIServer = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command(filepath.Join(assets, "etcd"), "--version").Output(); err == nil {
		v.Etcd = strings.TrimSpace(strings.Split(string(out), "\n")[0])
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			switch d.Path {
			case "k8s.io/client-go":
				v.ClientGo = d.Version
			case "sigs.k8s.io/controller-runtime":
				v.ControllerRuntime = d.Version
			}
		}
	}
	v.Netguard = "unknown"
	if out, err := gitOutput(repo, "rev-parse", "HEAD"); err == nil {
		v.Netguard = out
		if st, err := gitOutput(repo, "status", "--porcelain", "--untracked-files=no"); err == nil && st != "" {
			v.Netguard += " (with uncommitted changes)"
		}
	}
	return v
}

func gitOutput(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

// build compiles a main package of the repository into dir.
func build(ctx context.Context, repo, pkg, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = repo
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

// floorServer is a running hack/loadgen/floor.
type floorServer struct {
	cmd  *exec.Cmd
	done chan error
	URL  string
}

func startFloor(ctx context.Context, binary, certDir string, log io.Writer, extra ...string) (*floorServer, error) {
	port, err := cluster.FreePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, append([]string{"-port", strconv.Itoa(port), "-cert-dir", certDir}, extra...)...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	f := &floorServer{cmd: cmd, done: make(chan error, 1), URL: "https://127.0.0.1:" + strconv.Itoa(port)}
	go func() { f.done <- cmd.Wait() }()
	// Ready when it completes a TLS handshake.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // readiness probe of our own loopback server
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-f.done:
			f.done <- err
			return nil, fmt.Errorf("floor exited: %v", err)
		case <-ctx.Done():
			f.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if resp, err := client.Get(f.URL + "/healthz"); err == nil {
			resp.Body.Close()
			return f, nil
		}
	}
	f.stop()
	return nil, errors.New("floor not serving within 20s")
}

func (f *floorServer) pid() int { return f.cmd.Process.Pid }

func (f *floorServer) stop() {
	if f == nil || f.cmd.Process == nil {
		return
	}
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		_ = f.cmd.Process.Kill()
		<-f.done
	}
}

// findPID returns the process whose command line has every one of parts.
func findPID(parts ...string) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cmdline := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		all := true
		for _, p := range parts {
			if !strings.Contains(cmdline, p) {
				all = false
				break
			}
		}
		if all {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process with %q", parts)
}

// rssBytes reads VmRSS from /proc/PID/status.
func rssBytes(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmRSS:") {
			fs := strings.Fields(sc.Text())
			if len(fs) >= 2 {
				kb, err := strconv.ParseFloat(fs[1], 64)
				return kb * 1024, err
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// cpuSeconds is the user plus system CPU time of a process so far.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("malformed stat")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil // USER_HZ is 100 on Linux
}

// metricValue returns the first sample of a Prometheus metric in the text
// exposition at url.
func metricValue(url, name string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			f := strings.Fields(line)
			return strconv.ParseFloat(f[len(f)-1], 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found at %s", name, url)
}

func mib(b float64) string { return fmt.Sprintf("%.0f MiB", b/1024/1024) }
