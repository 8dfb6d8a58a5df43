package chart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadValuesFailWithReadableErrors installs wrong values the way a user
// would write them: each must fail before anything reaches the cluster, and
// the message must name the value and what is wrong with it.
func TestBadValuesFailWithReadableErrors(t *testing.T) {
	for _, tc := range []struct {
		name, values string
		want         []string
	}{
		{
			name:   "timeout above five seconds",
			values: "webhooks: {timeoutSeconds: 30}",
			want:   []string{"/webhooks/timeoutSeconds", "maximum", "got 30, want 5"},
		},
		{
			name:   "unknown level",
			values: "config: {defaults: {enforce: strict, audit: restricted, warn: restricted}}",
			want:   []string{"/config/defaults/enforce", "'strict' does not match pattern"},
		},
		{
			name:   "typo in a key",
			values: "replicas: 3",
			want:   []string{"additional properties 'replicas' not allowed"},
		},
		{
			name:   "typo in a nested key",
			values: "webhooks: {timeoutSecond: 3}",
			want:   []string{"/webhooks", "additional properties 'timeoutSecond' not allowed"},
		},
		{
			name:   "address without prefix length",
			values: "networkPolicy: {apiServer: {cidrs: [10.0.0.1], ports: [6443]}}",
			want:   []string{"/networkPolicy/apiServer/cidrs/0", "'10.0.0.1' does not match pattern"},
		},
		{
			name:   "no API server address",
			values: "networkPolicy: {apiServer: {cidrs: [], ports: [6443]}}",
			want:   []string{"/networkPolicy/apiServer/cidrs", "minItems"},
		},
		{
			name:   "unknown failure policy",
			values: "webhooks: {validating: {failurePolicy: Sometimes}}",
			want:   []string{"/webhooks/validating/failurePolicy", "'Fail'", "'Ignore'"},
		},
		{
			name:   "issuer without kind",
			values: "certManager: {issuerRef: {name: corp-ca}}",
			want:   []string{"/certManager/issuerRef", "kind"},
		},
		{
			name:   "replicas as a string",
			values: "replicaCount: \"2\"",
			want:   []string{"/replicaCount", "want integer"},
		},
		{
			name:   "no replicas",
			values: "replicaCount: 0",
			want:   []string{"/replicaCount", "minimum"},
		},
		{
			name:   "several replicas without leader election",
			values: "leaderElection: {enabled: false}",
			want:   []string{"leaderElection.enabled=false needs replicaCount: 1 (got 2)"},
		},
		{
			name:   "PDB that blocks every drain",
			values: "replicaCount: 2\npodDisruptionBudget: {minAvailable: 2}",
			want:   []string{"podDisruptionBudget.minAvailable 2 must be below replicaCount 2"},
		},
		{
			name:   "no concurrent evaluations",
			values: "config: {admission: {maxConcurrentEvaluations: 0}}",
			want:   []string{"/config/admission/maxConcurrentEvaluations", "minimum"},
		},
		{
			name:   "existing service account without a name",
			values: "serviceAccount: {create: false}",
			want:   []string{"serviceAccount.name is required when serviceAccount.create is false"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderChart(t, "netguard", "netguard-system", tc.values)
			if err == nil {
				t.Fatalf("values %q rendered; want an error", tc.values)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			t.Logf("%s:\n%v", tc.values, err)
		})
	}
}

// TestInstallDocValues renders every values snippet in docs/install.md, so the
// documentation never shows values the schema rejects.
func TestInstallDocValues(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(doc), "```yaml\n")[1:]
	if len(blocks) < 2 {
		t.Fatalf("found %d yaml blocks in docs/install.md", len(blocks))
	}
	for i, b := range blocks {
		snippet, _, _ := strings.Cut(b, "```")
		if _, err := renderChart(t, "netguard", "netguard-system", snippet); err != nil {
			t.Errorf("docs/install.md yaml block %d does not install:\n%s\n%v", i+1, snippet, err)
		}
	}
}
