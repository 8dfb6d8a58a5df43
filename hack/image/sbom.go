package main

// The SBOM is an SPDX 2.3 JSON document made from the build information the
// Go linker writes into the binary (the same data `go version -m` prints):
// the main module, every module linked in with its version and go.sum hash,
// and the Go standard library. It lists exactly what is in the image, since
// the image holds nothing but this binary and two text files.
//
// cyclonedx-gomod and syft make such a document from a binary too, but
// either one adds dozens of modules to go.mod for what is a walk over
// debug/buildinfo; teams that standardise on them can run them on the
// binary in bin/image and get the same module list.

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
)

type spdxDoc struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID           string            `json:"SPDXID"`
	Name             string            `json:"name"`
	VersionInfo      string            `json:"versionInfo,omitempty"`
	DownloadLocation string            `json:"downloadLocation"`
	FilesAnalyzed    bool              `json:"filesAnalyzed"`
	LicenseConcluded string            `json:"licenseConcluded"`
	LicenseDeclared  string            `json:"licenseDeclared"`
	CopyrightText    string            `json:"copyrightText"`
	PrimaryPurpose   string            `json:"primaryPackagePurpose,omitempty"`
	Checksums        []spdxChecksum    `json:"checksums,omitempty"`
	ExternalRefs     []spdxExternalRef `json:"externalRefs,omitempty"`
	Comment          string            `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxExternalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

var spdxIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

func spdxID(kind, name string) string {
	return "SPDXRef-" + kind + "-" + strings.Trim(spdxIDUnsafe.ReplaceAllString(name, "-"), "-")
}

// spdxDocument describes o.Binary. Its namespace includes the binary's hash,
// so that documents of different builds never share one, and nothing in it
// depends on when or where it is made.
func spdxDocument(o options) ([]byte, error) {
	bin, err := os.ReadFile(o.Binary)
	if err != nil {
		return nil, err
	}
	info, err := buildinfo.Read(strings.NewReader(string(bin)))
	if err != nil {
		return nil, fmt.Errorf("%s has no Go build information: %w", o.Binary, err)
	}
	sum := sha256.Sum256(bin)
	binHash := hex.EncodeToString(sum[:])

	mainID := spdxID("Package", "netguard")
	doc := spdxDoc{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              "netguard-" + o.Version,
		DocumentNamespace: fmt.Sprintf("%s/spdx/netguard-%s-%s", strings.TrimSuffix(o.Source, "/"), o.Version, binHash),
		CreationInfo: spdxCreationInfo{
			Created:  o.Created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: netguard-hack-image", "Organization: netguard"},
		},
	}
	doc.Packages = append(doc.Packages, spdxPackage{
		SPDXID: mainID, Name: info.Main.Path, VersionInfo: o.Version,
		DownloadLocation: o.Source, LicenseConcluded: "NOASSERTION", LicenseDeclared: "Apache-2.0",
		CopyrightText: "NOASSERTION", PrimaryPurpose: "APPLICATION",
		Checksums:    []spdxChecksum{{Algorithm: "SHA256", Value: binHash}},
		ExternalRefs: []spdxExternalRef{{"PACKAGE-MANAGER", "purl", fmt.Sprintf("pkg:golang/%s@%s", info.Main.Path, o.Version)}},
		Comment:      "the binary " + binaryPath + " in the image",
	})
	doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", mainID})

	goVersion := strings.TrimPrefix(info.GoVersion, "go")
	stdID := spdxID("Package", "stdlib")
	doc.Packages = append(doc.Packages, spdxPackage{
		SPDXID: stdID, Name: "stdlib", VersionInfo: goVersion,
		DownloadLocation: "https://go.dev/dl/", LicenseConcluded: "NOASSERTION", LicenseDeclared: "BSD-3-Clause",
		CopyrightText: "NOASSERTION", PrimaryPurpose: "LIBRARY",
		ExternalRefs: []spdxExternalRef{{"PACKAGE-MANAGER", "purl", "pkg:golang/stdlib@" + goVersion}},
	})
	doc.Relationships = append(doc.Relationships, spdxRelationship{mainID, "DEPENDS_ON", stdID})

	for _, dep := range info.Deps {
		m := dep
		comment := ""
		if dep.Replace != nil {
			comment = fmt.Sprintf("replaces %s@%s", dep.Path, dep.Version)
			m = dep.Replace
		}
		p := spdxPackage{
			SPDXID: spdxID("Package", m.Path+"-"+m.Version), Name: m.Path, VersionInfo: m.Version,
			DownloadLocation: "NOASSERTION", LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION",
			CopyrightText: "NOASSERTION", PrimaryPurpose: "LIBRARY", Comment: comment,
			ExternalRefs: []spdxExternalRef{{"PACKAGE-MANAGER", "purl", fmt.Sprintf("pkg:golang/%s@%s", m.Path, m.Version)}},
		}
		if m.Sum != "" {
			// The go.sum hash (h1: base64 SHA-256 of the module's file
			// list) has no SPDX algorithm name; it goes in the comment.
			p.Comment = strings.TrimSpace(p.Comment + " go.sum " + m.Sum)
		}
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, spdxRelationship{mainID, "DEPENDS_ON", p.SPDXID})
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
