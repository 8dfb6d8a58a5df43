package rules

import (
	"encoding/json"
	"fmt"
	"slices"
)

// AnnotationGenerated is set by netguard on an injected workload. It records
// what was generated for it, so the controller and `netguard audit` can tell
// whether the policies in the cluster are missing or stale:
//
//	netguard.io/generated: {"digest":"<hex sha256>","policies":["netguard.web.depends-on", ...]}
const AnnotationGenerated = "netguard.io/generated"

// GeneratedRecord is the value of AnnotationGenerated.
type GeneratedRecord struct {
	// Digest is Generated.Digest: a hash of the policies' names and specs.
	Digest string `json:"digest"`
	// Policies are the generated policies' names, sorted.
	Policies []string `json:"policies"`
}

// Record summarises g for AnnotationGenerated.
func (g Generated) Record() GeneratedRecord {
	r := GeneratedRecord{Digest: g.Digest, Policies: make([]string, 0, len(g.Policies))}
	for _, p := range g.Policies {
		r.Policies = append(r.Policies, p.Name)
	}
	slices.Sort(r.Policies)
	return r
}

// String is the annotation value: compact JSON with a stable field order.
func (r GeneratedRecord) String() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// ParseGeneratedRecord reads an AnnotationGenerated value.
func ParseGeneratedRecord(s string) (GeneratedRecord, error) {
	var r GeneratedRecord
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return r, fmt.Errorf("%s: %q is not a generated record: %v", AnnotationGenerated, s, err)
	}
	if r.Policies == nil {
		r.Policies = []string{}
	}
	return r, nil
}
