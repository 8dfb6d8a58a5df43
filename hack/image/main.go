// Command image assembles netguard's container image from a static binary,
// without a Docker engine and without pulling a base image: one layer holding
// the binary, a passwd and group file naming the nonroot user (UID/GID 65532),
// a writable /tmp and an SBOM, on an empty base. It writes the image as an OCI
// image layout (for crane, skopeo, oras, regctl) and as a docker-archive
// tarball (for docker load, podman load, kind load image-archive).
//
// The output is reproducible: every timestamp is -created (make image passes
// the commit time), file owners and modes are fixed, the layer is compressed
// with the standard library's gzip, and the binary is built by make image with
// -trimpath and an empty build ID. Two runs on the same binary give the same
// digest. See docs/install.md, "The image".
//
//	go run ./hack/image -binary bin/image/linux-amd64/netguard -version 0.1.0 -out bin/image
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths inside the image. The chart runs the entrypoint with its own args.
const (
	binaryPath = "/usr/local/bin/netguard"
	sbomPath   = "/usr/share/sbom/netguard.spdx.json"
	nonroot    = 65532
)

// options describe one image.
type options struct {
	Binary     string    // static linux binary of netguard
	Version    string    // image version and tag, e.g. the chart's appVersion
	Revision   string    // source commit
	Repository string    // repository the tag names, e.g. ghcr.io/netguard/netguard
	Source     string    // org.opencontainers.image.source
	Created    time.Time // every timestamp in the image
	OS, Arch   string
}

func main() {
	var o options
	var out, created string
	flag.StringVar(&o.Binary, "binary", "", "static linux binary of netguard (CGO_ENABLED=0, -trimpath, -buildid=)")
	flag.StringVar(&o.Version, "version", "", "image version, also its tag (make image: the chart's appVersion)")
	flag.StringVar(&o.Revision, "revision", "", "source commit, for org.opencontainers.image.revision")
	flag.StringVar(&o.Repository, "repository", "ghcr.io/netguard/netguard", "repository the tag names in the tarball and the layout")
	flag.StringVar(&o.Source, "source", "https://github.com/netguard/netguard", "org.opencontainers.image.source")
	flag.StringVar(&created, "created", "0", "creation time of everything in the image, as Unix seconds (SOURCE_DATE_EPOCH) or RFC 3339")
	flag.StringVar(&o.Arch, "arch", runtime.GOARCH, "architecture of the binary")
	flag.StringVar(&out, "out", "bin/image", "directory to write oci/ (OCI image layout), netguard.tar (docker archive), sbom.spdx.json and digest into")
	flag.Parse()
	o.OS = "linux"
	t, err := parseCreated(created)
	if err != nil {
		fail(err)
	}
	o.Created = t
	img, sbom, err := build(o)
	if err != nil {
		fail(err)
	}
	digest, err := write(img, sbom, o, out)
	if err != nil {
		fail(err)
	}
	fmt.Printf("%s:%s@%s\n", o.Repository, o.Version, digest)
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "image: %v\n", err)
	os.Exit(1)
}

func parseCreated(s string) (time.Time, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("-created %q: give Unix seconds or an RFC 3339 time", s)
	}
	return t.UTC(), nil
}

// build returns the image and the SPDX document it carries.
func build(o options) (v1.Image, []byte, error) {
	if o.Binary == "" || o.Version == "" {
		return nil, nil, errors.New("-binary and -version are required")
	}
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, nil, err
	}
	if !bytes.HasPrefix(bin, []byte("\x7fELF")) {
		return nil, nil, fmt.Errorf("%s is not a linux (ELF) binary: build it with GOOS=linux CGO_ENABLED=0", o.Binary)
	}
	sbom, err := spdxDocument(o)
	if err != nil {
		return nil, nil, err
	}
	layerTar, err := rootFS(o, bin, sbom)
	if err != nil {
		return nil, nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressionLevel(gzip.BestCompression), tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, nil, err
	}

	labels := ociLabels(o)
	created := v1.Time{Time: o.Created}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	cfg, err := base.ConfigFile()
	if err != nil {
		return nil, nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Created = created
	cfg.OS, cfg.Architecture = o.OS, o.Arch
	cfg.Author = "netguard"
	cfg.Config = v1.Config{
		User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
		Entrypoint: []string{binaryPath},
		WorkingDir: "/",
		Env:        []string{"PATH=/usr/local/bin", "HOME=/home/nonroot"},
		Labels:     labels,
	}
	img, err := mutate.ConfigFile(base, cfg)
	if err != nil {
		return nil, nil, err
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   created,
			CreatedBy: "hack/image: " + binaryPath + ", /etc/passwd, /etc/group, " + sbomPath,
			Comment:   "netguard " + o.Version,
		},
	})
	if err != nil {
		return nil, nil, err
	}
	// The labels also annotate the manifest, where registries show them.
	return mutate.Annotations(img, labels).(v1.Image), sbom, nil
}

// ociLabels are the pre-defined annotation keys of the OCI image spec.
func ociLabels(o options) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":         "netguard",
		"org.opencontainers.image.description":   "Admission guard for Kubernetes NetworkPolicy in a default-deny cluster",
		"org.opencontainers.image.version":       o.Version,
		"org.opencontainers.image.created":       o.Created.Format(time.RFC3339),
		"org.opencontainers.image.source":        o.Source,
		"org.opencontainers.image.url":           o.Source,
		"org.opencontainers.image.documentation": o.Source + "/blob/main/docs/install.md",
		"org.opencontainers.image.vendor":        "netguard",
		"org.opencontainers.image.licenses":      "Apache-2.0",
		"org.opencontainers.image.ref.name":      o.Version,
		"org.opencontainers.image.base.name":     "scratch",
	}
	if o.Revision != "" {
		l["org.opencontainers.image.revision"] = o.Revision
	}
	return l
}

// rootFS is the image's only layer, as an uncompressed tar with fixed owners,
// modes and times, entries in a fixed order.
func rootFS(o options, bin, sbom []byte) ([]byte, error) {
	type entry struct {
		name     string
		mode     int64
		uid, gid int
		data     []byte
		dir      bool
	}
	entries := []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, uid: nonroot, gid: nonroot, dir: true},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/local/", mode: 0o755, dir: true},
		{name: "usr/local/bin/", mode: 0o755, dir: true},
		{name: strings.TrimPrefix(binaryPath, "/"), mode: 0o755, data: bin},
		{name: "usr/share/", mode: 0o755, dir: true},
		{name: "usr/share/sbom/", mode: 0o755, dir: true},
		{name: strings.TrimPrefix(sbomPath, "/"), mode: 0o644, data: sbom},
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: o.Created, Format: tar.FormatPAX,
		}
		if e.uid == nonroot {
			h.Uname, h.Gname = "nonroot", "nonroot"
		} else {
			h.Uname, h.Gname = "root", "root"
		}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if !e.dir {
			if _, err := tw.Write(e.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// write stores the image under out: oci/ (an OCI image layout whose one
// manifest is tagged with the version), netguard.tar (docker archive),
// sbom.spdx.json and digest. It returns the manifest digest.
func write(img v1.Image, sbom []byte, o options, out string) (string, error) {
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", err
	}
	ociDir := filepath.Join(out, "oci")
	// A layout is appended to: start from an empty one so that the index
	// holds this image only.
	if err := os.RemoveAll(ociDir); err != nil {
		return "", err
	}
	p, err := layout.Write(ociDir, empty.Index)
	if err != nil {
		return "", err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": o.Version,
	}), layout.WithPlatform(v1.Platform{OS: o.OS, Architecture: o.Arch})); err != nil {
		return "", err
	}
	ref, err := name.NewTag(o.Repository + ":" + o.Version)
	if err != nil {
		return "", fmt.Errorf("-repository %q -version %q: %w", o.Repository, o.Version, err)
	}
	if err := tarball.WriteToFile(filepath.Join(out, "netguard.tar"), ref, img); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(out, "sbom.spdx.json"), sbom, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(out, "digest"), []byte(digest.String()+"\n"), 0o644); err != nil {
		return "", err
	}
	return digest.String(), nil
}
