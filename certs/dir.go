package certs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// File names in a serving directory. They match controller-runtime's webhook
// server defaults (CertName, KeyName) and the keys of a kubernetes.io/tls
// Secret, so the same directory works as a mounted Secret or a --cert-dir.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
	CAFile   = "ca.crt"
)

// WriteServingDir writes serving's certificate and key and ca's certificate
// to dir as tls.crt, tls.key (mode 0600) and ca.crt, creating dir with mode
// 0700 if it is missing. The CA key is never written.
//
// Each file is written to a temporary file in dir and renamed over the old
// one, so a reader never sees a half-written file. The key is renamed before
// the certificate: a watcher that reads in between sees a key that does not
// match the old certificate, fails to load the pair and keeps serving the old
// one until the certificate lands a moment later (controller-runtime's
// certwatcher logs that once and carries on).
func WriteServingDir(dir string, ca, serving *KeyPair) error {
	if ca == nil || len(ca.CertPEM) == 0 {
		return fmt.Errorf("write serving directory %q: CA certificate is missing", dir)
	}
	if serving == nil || len(serving.CertPEM) == 0 || len(serving.KeyPEM) == 0 {
		return fmt.Errorf("write serving directory %q: serving certificate or key is missing", dir)
	}
	return writeServingFiles(dir, ca.CertPEM, serving.CertPEM, serving.KeyPEM)
}

// writeServingFiles is WriteServingDir for raw PEM, so the rotator can write
// a bundle of several CAs to ca.crt.
func writeServingFiles(dir string, caPEM, certPEM, keyPEM []byte) error {
	if dir == "" {
		return errors.New("write serving directory: path is empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write serving directory: %w", err)
	}
	// ca.crt first: anything that reads it to trust us then already trusts
	// the CA that signed the certificate about to appear.
	if err := writeFileAtomic(dir, CAFile, caPEM, 0o644); err != nil {
		return err
	}
	if err := writeFileAtomic(dir, KeyFile, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(dir, CertFile, certPEM, 0o644); err != nil {
		return err
	}
	return syncDir(dir)
}

func writeFileAtomic(dir, name string, data []byte, mode os.FileMode) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %q: %w", filepath.Join(dir, name), err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600; set the final mode explicitly so the
	// umask plays no part in it.
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("write %q: %w", filepath.Join(dir, name), err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %q: %w", filepath.Join(dir, name), err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %q: %w", filepath.Join(dir, name), err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %q: %w", filepath.Join(dir, name), err)
	}
	if err = os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("write %q: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// syncDir makes the renames durable across a node crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %q: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %q: %w", dir, err)
	}
	return nil
}

// LoadKeyPairFromDir reads tls.crt and tls.key from dir and checks that they
// belong together.
func LoadKeyPairFromDir(dir string) (*KeyPair, error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("load serving certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("load serving certificate: %w", err)
	}
	kp, err := ParseKeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load serving certificate from %q and %q: %w", certPath, keyPath, err)
	}
	return kp, nil
}

// LoadCABundleFromDir reads and parses ca.crt from dir.
func LoadCABundleFromDir(dir string) ([]byte, error) {
	p := filepath.Join(dir, CAFile)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("load CA bundle: %w", err)
	}
	if _, err := ParseCertificates(data); err != nil {
		return nil, fmt.Errorf("load CA bundle %q: %w", p, err)
	}
	return data, nil
}
