package certs

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWriteServingDir(t *testing.T) {
	ca := mustCA(t, time.Hour)
	leaf := mustServing(t, ca, time.Hour)
	dir := filepath.Join(t.TempDir(), "missing", "certs")
	if err := WriteServingDir(dir, ca, leaf); err != nil {
		t.Fatalf("WriteServingDir: %v", err)
	}
	modes := map[string]os.FileMode{"": 0o700, KeyFile: 0o600, CertFile: 0o644, CAFile: 0o644}
	for name, want := range modes {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("mode of %q = %o, want %o", filepath.Join(dir, name), got, want)
		}
	}
	got, err := LoadKeyPairFromDir(dir)
	if err != nil {
		t.Fatalf("LoadKeyPairFromDir: %v", err)
	}
	if !got.Cert.Equal(leaf.Cert) {
		t.Error("loaded certificate differs from the one written")
	}
	bundle, err := LoadCABundleFromDir(dir)
	if err != nil || !bytes.Equal(bundle, ca.CertPEM) {
		t.Errorf("ca.crt = %q, %v; want the CA certificate", bundle, err)
	}
	if bytes.Contains(readAll(t, dir), ca.KeyPEM) {
		t.Error("the CA private key was written to the serving directory")
	}
	assertOnlyServingFiles(t, dir)
}

// TestWriteServingDirReplacesAtomically rewrites the directory while a reader
// loads it; the reader must only ever see whole files, and at the end the last
// pair written.
func TestWriteServingDirReplacesAtomically(t *testing.T) {
	ca := mustCA(t, time.Hour)
	pairs := []*KeyPair{mustServing(t, ca, time.Hour), mustServing(t, ca, time.Hour)}
	dir := t.TempDir()
	if err := WriteServingDir(dir, ca, pairs[0]); err != nil {
		t.Fatal(err)
	}
	var (
		stop     atomic.Bool
		reads    atomic.Int64
		wg       sync.WaitGroup
		badMu    sync.Mutex
		badReads []string
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			for _, name := range []string{CertFile, KeyFile, CAFile} {
				data, err := os.ReadFile(filepath.Join(dir, name))
				ok := err == nil
				switch name {
				case KeyFile:
					ok = ok && (bytes.Equal(data, pairs[0].KeyPEM) || bytes.Equal(data, pairs[1].KeyPEM))
				case CertFile:
					ok = ok && (bytes.Equal(data, pairs[0].CertPEM) || bytes.Equal(data, pairs[1].CertPEM))
				case CAFile:
					ok = ok && bytes.Equal(data, ca.CertPEM)
				}
				if !ok {
					badMu.Lock()
					badReads = append(badReads, name)
					badMu.Unlock()
				}
				reads.Add(1)
			}
		}
	}()
	for i := 1; i <= 40; i++ {
		if err := WriteServingDir(dir, ca, pairs[i%2]); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if len(badReads) > 0 {
		t.Errorf("%d of %d reads saw a partial or unknown file, first %q", len(badReads), reads.Load(), badReads[0])
	}
	got, err := LoadKeyPairFromDir(dir)
	if err != nil || !got.Cert.Equal(pairs[0].Cert) {
		t.Errorf("after rewriting, the directory does not hold the last pair written (err %v)", err)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)); err != nil {
		t.Errorf("crypto/tls cannot load the directory: %v", err)
	}
	assertOnlyServingFiles(t, dir)
}

func TestWriteServingDirErrors(t *testing.T) {
	ca := mustCA(t, time.Hour)
	leaf := mustServing(t, ca, time.Hour)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		dir         string
		ca, serving *KeyPair
		want        string
	}{
		{"nil CA", t.TempDir(), nil, leaf, "CA certificate is missing"},
		{"nil serving", t.TempDir(), ca, nil, "serving certificate or key is missing"},
		{"serving without key", t.TempDir(), ca, &KeyPair{CertPEM: leaf.CertPEM}, "serving certificate or key is missing"},
		{"empty path", "", ca, leaf, "path is empty"},
		{"path is a file", file, ca, leaf, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := WriteServingDir(tt.dir, tt.ca, tt.serving)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := LoadKeyPairFromDir(t.TempDir()); err == nil || !strings.Contains(err.Error(), CertFile) {
		t.Errorf("loading an empty directory: error = %v, want one naming %q", err, CertFile)
	}
}

func readAll(t *testing.T, dir string) []byte {
	t.Helper()
	var all []byte
	for _, name := range []string{CertFile, KeyFile, CAFile} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, data...)
	}
	return all
}

func assertOnlyServingFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, ",") != "ca.crt,tls.crt,tls.key" {
		t.Errorf("directory holds %v, want only ca.crt, tls.crt and tls.key (no temporary files left behind)", names)
	}
}
