package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// buildBinary builds cmd/netguard as make image does.
func buildBinary(t *testing.T, out, version string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -buildid= -X main.version="+version+" -X main.commit=0123abc",
		"-o", out, "../../cmd/netguard")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
}

// TestImage builds the binary twice and the image from each, checks that the
// digests agree, then unpacks the written image and runs netguard from its
// file system.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds netguard twice")
	}
	if runtime.GOOS != "linux" {
		t.Skip("runs the linux binary from the image")
	}
	dir := t.TempDir()
	const version = "9.8.7"
	o := options{
		Version: version, Revision: "0123abc", Repository: "example.test/netguard",
		Source: "https://github.com/netguard/netguard", Created: time.Unix(1700000000, 0).UTC(),
		OS: "linux", Arch: runtime.GOARCH,
	}
	var digests []string
	for i, name := range []string{"a", "b"} {
		o.Binary = filepath.Join(dir, name, "netguard")
		buildBinary(t, o.Binary, version)
		img, sbom, err := build(o)
		if err != nil {
			t.Fatal(err)
		}
		d, err := write(img, sbom, o, filepath.Join(dir, "out-"+name))
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
		if i == 1 && digests[0] != digests[1] {
			t.Fatalf("two builds of the same source gave %s and %s: the image is not reproducible", digests[0], digests[1])
		}
	}
	out := filepath.Join(dir, "out-a")

	// The OCI layout: one manifest, tagged with the version.
	idx, err := layout.ImageIndexFromPath(filepath.Join(out, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != version {
		t.Fatalf("layout index %+v: want one manifest named %s", im.Manifests, version)
	}
	if im.Manifests[0].Digest.String() != digests[0] {
		t.Errorf("layout holds %s, build said %s", im.Manifests[0].Digest, digests[0])
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	// The docker archive holds the same image.
	tb, err := tarball.ImageFromPath(filepath.Join(out, "netguard.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tbCfg, _ := tb.ConfigName()
	imgCfg, _ := img.ConfigName()
	if tbCfg != imgCfg {
		t.Errorf("docker archive config %s, layout config %s", tbCfg, imgCfg)
	}

	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", cfg.Config.User)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{binaryPath}) {
		t.Errorf("entrypoint %v", cfg.Config.Entrypoint)
	}
	if cfg.OS != "linux" || cfg.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s", cfg.OS, cfg.Architecture)
	}
	if !cfg.Created.Time.Equal(o.Created) {
		t.Errorf("created %v, want %v", cfg.Created, o.Created)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.revision": "0123abc",
		"org.opencontainers.image.source":   o.Source,
		"org.opencontainers.image.title":    "netguard",
		"org.opencontainers.image.created":  "2023-11-14T22:13:20Z",
	} {
		if got := cfg.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q, want %q", k, got, want)
		}
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.Annotations["org.opencontainers.image.version"] != version || m.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("manifest %s annotations %v", m.MediaType, m.Annotations)
	}

	// Unpack the file system as a runtime would and run netguard from it.
	root := filepath.Join(dir, "rootfs")
	owners := untar(t, mutate.Extract(img), root)
	if owners["home/nonroot"] != 65532 || owners[strings.TrimPrefix(binaryPath, "/")] != 0 {
		t.Errorf("owners %v: home/nonroot must belong to 65532, the binary to root", owners)
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil || !strings.Contains(string(passwd), "nonroot:x:65532:65532:") {
		t.Errorf("etc/passwd %q %v", passwd, err)
	}
	var v struct{ Version, Commit, Platform string }
	cmd := exec.Command(filepath.Join(root, binaryPath), "version", "-o", "json")
	cmd.Env = []string{} // nothing from the host
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("netguard version from the image: %v", err)
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Version != version || v.Commit != "0123abc" || v.Platform != "linux/"+runtime.GOARCH {
		t.Errorf("netguard version -o json = %s (%v)", b, err)
	}

	// The SBOM in the image is the one written beside it and names the
	// modules linked into the binary.
	inImage, err := os.ReadFile(filepath.Join(root, sbomPath))
	if err != nil {
		t.Fatal(err)
	}
	beside, err := os.ReadFile(filepath.Join(out, "sbom.spdx.json"))
	if err != nil || !bytes.Equal(inImage, beside) {
		t.Fatalf("sbom in the image differs from sbom.spdx.json (%v)", err)
	}
	var doc spdxDoc
	if err := json.Unmarshal(inImage, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.CreationInfo.Created != "2023-11-14T22:13:20Z" {
		t.Errorf("sbom header %s %s", doc.SPDXVersion, doc.CreationInfo.Created)
	}
	names := map[string]string{}
	for _, p := range doc.Packages {
		names[p.Name] = p.VersionInfo
	}
	for _, mod := range []string{"github.com/netguard/netguard", "k8s.io/api", "sigs.k8s.io/controller-runtime", "stdlib"} {
		if names[mod] == "" {
			t.Errorf("sbom lacks %s", mod)
		}
	}
	if names["github.com/google/go-containerregistry"] != "" {
		t.Errorf("sbom lists go-containerregistry, which only builds the image")
	}
	if len(doc.Relationships) != len(doc.Packages) {
		t.Errorf("%d relationships for %d packages", len(doc.Relationships), len(doc.Packages))
	}
}

// untar writes a flattened image file system under root and returns the
// owner UID of each entry.
func untar(t *testing.T, rc io.ReadCloser, root string) map[string]int {
	t.Helper()
	defer rc.Close()
	owners := map[string]int{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return owners
		}
		if err != nil {
			t.Fatal(err)
		}
		owners[h.Name] = h.Uid
		p := filepath.Join(root, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, root+string(filepath.Separator)) {
			t.Fatalf("entry %q leaves the root", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o777)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		default:
			t.Fatalf("unexpected entry %q of type %c", h.Name, h.Typeflag)
		}
	}
}
