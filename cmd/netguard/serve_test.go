package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netguard/netguard/certs"
)

func writeTestCerts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.NewCA("test-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := certs.NewServing(ca, []string{"localhost"}, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteServingDir(dir, ca, srv); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Start-up errors are one line on stderr, exit code 2, naming what is wrong
// and where.
func TestServeStartupErrorsAreOneLine(t *testing.T) {
	good := writeTestCerts(t)
	garbage := t.TempDir()
	if err := os.WriteFile(filepath.Join(garbage, "tls.crt"), []byte("not a cert"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(garbage, "tls.key"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	badConfig := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(badConfig, []byte("apiVersion: netguard.io/v1alpha1\nkind: NetguardConfiguration\ndefaults:\n  enforce: strict\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	typoConfig := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(typoConfig, []byte("apiVersion: netguard.io/v1alpha1\nkind: NetguardConfiguration\ndefualts: {}\n"), 0o600); err != nil { //nolint:misspell // the typo is what the test feeds in
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown flag", []string{"serve", "--no-such-flag"}, []string{"unknown flag: --no-such-flag"}},
		{"bad port", []string{"serve", "--cert-dir", good, "--webhook-port", "70000"}, []string{"--webhook-port 70000: must be 1-65535"}},
		{"bad port type", []string{"serve", "--webhook-port", "abc"}, []string{`invalid argument "abc" for "--webhook-port"`}},
		{"bad log format", []string{"serve", "--cert-dir", good, "--log-format", "xml"}, []string{`--log-format "xml": must be json or console`}},
		{"bad tls version", []string{"serve", "--cert-dir", good, "--tls-min-version", "1.0"}, []string{`--tls-min-version "1.0": must be 1.2 or 1.3`}},
		{"bad bind address", []string{"serve", "--cert-dir", good, "--metrics-bind-address", "nope"}, []string{`--metrics-bind-address "nope": must be HOST:PORT`}},
		{"missing cert", []string{"serve", "--cert-dir", "/nonexistent/certs"}, []string{"serving certificate:", "/nonexistent/certs/tls.crt", "no such file"}},
		{"unreadable cert", []string{"serve", "--cert-dir", garbage}, []string{"serving certificate", "tls.crt", "tls.key"}},
		{"bad config level", []string{"serve", "--cert-dir", good, "--config", badConfig}, []string{"--config", `defaults.enforce: Invalid value: "strict": unknown level "strict"`}},
		{"config typo", []string{"serve", "--cert-dir", good, "--config", typoConfig}, []string{"--config", `unknown field "defualts"`}}, //nolint:misspell // the typo is what the test feeds in
		{"missing config", []string{"serve", "--cert-dir", good, "--config", "/nonexistent.yaml"}, []string{"--config", "/nonexistent.yaml"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tc.args, ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
			if code != 2 {
				t.Errorf("exit code %d, want 2; stderr %q", code, errOut.String())
			}
			msg := errOut.String()
			if strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "netguard: ") {
				t.Errorf("want exactly one line starting with \"netguard: \", got %q", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("stderr %q does not mention %q", msg, w)
				}
			}
		})
	}
}

func TestVersionOutput(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"version", "-o", "json"}, ioStreams{Out: &out, ErrOut: &errOut}); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), `"version": "dev"`) || !strings.Contains(out.String(), `"goVersion"`) {
		t.Fatalf("version json: %s", out.String())
	}
}

// serve reads and writes while the API server waits for its answer, so a
// kubeconfig without a rate limit of its own gets none on the client side
// (client-go's default of 5 requests a second held an annotated Deployment
// for 1.2 s). A limit the kubeconfig's user chose is kept.
func TestServeRestConfigHasNoClientRateLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	kubeconfig := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n"
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	o := defaultServeOptions()
	o.Kubeconfig = path
	cfg, err := o.restConfig()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.QPS >= 0 || cfg.RateLimiter != nil {
		t.Errorf("QPS %v, RateLimiter %v: want the client-side limiter off (QPS < 0)", cfg.QPS, cfg.RateLimiter)
	}
	cfg.QPS = 50
	if got := withoutClientRateLimit(cfg); got.QPS != 50 {
		t.Errorf("a QPS the config sets must be kept, got %v", got.QPS)
	}
}
