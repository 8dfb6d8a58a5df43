package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// TestServeReportFlags: bad --audit-reports and --audit-report-max-results
// stop serve with one line naming the flag; good ones reach the audit.
func TestServeReportFlags(t *testing.T) {
	certDir := writeTestCerts(t)
	for _, args := range [][]string{
		{"--audit-reports=kyverno"},
		{"--audit-reports=openreports", "--audit-report-max-results=0"},
	} {
		var out, errOut bytes.Buffer
		code := run(append([]string{"serve", "--cert-dir", certDir}, args...), ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		msg := errOut.String()
		flag, _, _ := strings.Cut(args[len(args)-1], "=")
		if code != 2 || strings.Count(msg, "\n") != 1 || !strings.Contains(msg, flag) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and one line naming %s", args, code, msg, flag)
		}
	}
	o := auditServeOptions{AuditReports: []string{"policyreports", " openreports", "policyreports"}, AuditReportMaxResults: 10}
	r, err := o.reportOptions()
	if err != nil || !slices.Equal(r.Formats, []string{"policyreports", "openreports"}) || r.MaxResults != 10 {
		t.Errorf("reportOptions %+v %v", r, err)
	}
}
