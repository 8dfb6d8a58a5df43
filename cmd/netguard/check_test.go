package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// checkRun runs `netguard check` with args and returns exit code, stdout and
// stderr.
func checkRun(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"check"}, args...), ioStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
	return code, out.String(), errOut.String()
}

const (
	checkGood = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: api-from-web
  namespace: shop
spec:
  podSelector:
    matchLabels: {app: api}
  ingress:
  - from:
    - podSelector:
        matchLabels: {app: web}
    ports:
    - port: 8080
`
	// checkOpen violates baseline (no from) and restricted (no ports).
	checkOpen = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: open
spec:
  podSelector:
    matchLabels: {app: web}
  ingress:
  - {}
`
	// checkSameNamespace passes baseline and violates restricted.
	checkSameNamespace = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: same-namespace
  namespace: shop
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector: {}
    ports:
    - port: 8080
`
	checkConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
`
)

func TestCheckExitCodes(t *testing.T) {
	cases := []struct {
		name     string
		stdin    string
		args     []string
		code     int
		stdout   string
		stderr   string
		contains bool // stdout need only contain the text
	}{
		{
			name:   "allowed",
			stdin:  checkGood,
			args:   []string{"-f", "-"},
			code:   0,
			stdout: "1 NetworkPolicy checked against restricted:latest: 1 allowed, 0 not allowed (0 violations)\n",
		},
		{
			name:  "violations",
			stdin: checkGood + "---\n" + checkOpen + "---\n" + checkConfigMap,
			args:  []string{"-f", "-"},
			code:  1,
			stdout: `<stdin>#2: NetworkPolicy default/open violates restricted:latest
  <stdin>:24:5: [ingressAllPorts] spec.ingress[0]: allows every port of every protocol; list the ports in use under ports
  <stdin>:24:5: [ingressFromAnywhere] spec.ingress[0]: allows traffic from any source; select the client pods with podSelector or use a NetworkProfile

2 NetworkPolicies checked against restricted:latest: 1 allowed, 1 not allowed (2 violations); 1 object of other kinds skipped
`,
		},
		{
			name:   "baseline lets restricted-only violations pass",
			stdin:  checkSameNamespace,
			args:   []string{"-f", "-", "--level", "baseline"},
			code:   0,
			stdout: "1 NetworkPolicy checked against baseline:latest: 1 allowed, 0 not allowed (0 violations)\n",
		},
		{
			name:     "restricted at a pinned version",
			stdin:    checkSameNamespace,
			args:     []string{"-f", "-", "--level=restricted:v1.0"},
			code:     1,
			stdout:   "[ingressAllPodsFromAllPods] spec.ingress[0].from[0]:",
			contains: true,
		},
		{
			name:     "managed rejects every policy",
			stdin:    checkGood,
			args:     []string{"-f", "-", "--level", "managed"},
			code:     1,
			stdout:   "  <stdin>:4:3: [rawNetworkPolicy] only platform identities and netguard's generated policies may write NetworkPolicies in this namespace",
			contains: true,
		},
		{
			name:   "privileged checks nothing",
			stdin:  checkOpen,
			args:   []string{"-f", "-", "--level", "privileged"},
			code:   0,
			stdout: "1 NetworkPolicy checked against privileged:latest: 1 allowed, 0 not allowed (0 violations)\n",
		},
		{
			name:   "no NetworkPolicy at all",
			stdin:  checkConfigMap,
			args:   []string{"-f", "-"},
			code:   0,
			stdout: "0 NetworkPolicies checked against restricted:latest: 0 allowed, 0 not allowed (0 violations); 1 object of other kinds skipped\n",
		},
		{name: "no input", args: nil, code: 2, stderr: "netguard: no input: pass -f FILE, -f DIRECTORY or -f - for stdin\n"},
		{name: "bad level", args: []string{"-f", "-", "--level", "strict"}, code: 2,
			stderr: "netguard: --level: unknown level \"strict\": must be one of privileged, baseline, restricted, managed\n"},
		{name: "bad version", args: []string{"-f", "-", "--level", "baseline:1.0"}, code: 2,
			stderr: "netguard: --level: unknown version \"1.0\": must be \"latest\" or \"v<major>.<minor>\" such as \"v1.0\"\n"},
		{name: "bad output", args: []string{"-f", "-", "-o", "yaml"}, code: 2,
			stderr: "netguard: --output \"yaml\" is not supported; use text, json or sarif\n"},
		{name: "bad namespace", args: []string{"-f", "-", "-n", "Shop"}, code: 2,
			stderr: "netguard: --namespace \"Shop\" is not a valid namespace name\n"},
		{name: "positional argument", args: []string{"policy.yaml"}, code: 2,
			stderr: "netguard: unknown command \"policy.yaml\" for \"netguard check\"\n"},
		{name: "unknown flag", args: []string{"--levels", "x"}, code: 2,
			stderr: "netguard: unknown flag: --levels\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := checkRun(t, tc.stdin, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if tc.contains {
				if !strings.Contains(out, tc.stdout) {
					t.Errorf("stdout lacks %q:\n%s", tc.stdout, out)
				}
			} else if out != tc.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, tc.stdout)
			}
			if errOut != tc.stderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", errOut, tc.stderr)
			}
		})
	}
}

func TestCheckJSON(t *testing.T) {
	code, out, errOut := checkRun(t, checkGood+"---\n"+checkOpen, "-f", "-", "-o", "json")
	if code != 1 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := `{
  "results": [
    {
      "kind": "NetworkPolicy",
      "namespace": "shop",
      "name": "api-from-web",
      "allowed": true,
      "source": "<stdin>#1",
      "violations": []
    },
    {
      "kind": "NetworkPolicy",
      "namespace": "default",
      "name": "open",
      "allowed": false,
      "source": "<stdin>#2",
      "violations": [
        {
          "rule": "ingressAllPorts",
          "field": "spec.ingress[0]",
          "message": "allows every port of every protocol; list the ports in use under ports",
          "line": 24,
          "column": 5
        },
        {
          "rule": "ingressFromAnywhere",
          "field": "spec.ingress[0]",
          "message": "allows traffic from any source; select the client pods with podSelector or use a NetworkProfile",
          "line": 24,
          "column": 5
        }
      ]
    }
  ]
}
`
	if out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}

	// The shape, independent of formatting: exactly these keys.
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if got := checkKeys(doc); !reflect.DeepEqual(got, []string{"results"}) {
		t.Errorf("top-level keys %v", got)
	}
	for _, r := range doc["results"].([]any) {
		res := r.(map[string]any)
		if got := checkKeys(res); !reflect.DeepEqual(got, []string{"allowed", "kind", "name", "namespace", "source", "violations"}) {
			t.Errorf("result keys %v", got)
		}
		if _, ok := res["violations"].([]any); !ok {
			t.Errorf("violations is %T, want a list", res["violations"])
		}
		for _, v := range res["violations"].([]any) {
			if got := checkKeys(v.(map[string]any)); !reflect.DeepEqual(got, []string{"column", "field", "line", "message", "rule"}) {
				t.Errorf("violation keys %v", got)
			}
		}
	}
}

func checkKeys(m map[string]any) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestCheckBadDocumentAmongGoodOnes(t *testing.T) {
	in := checkGood + "---\nkind: NetworkPolicy\nmetadata: {name: x}\n---\n" + checkOpen +
		"---\napiVersion: networking.k8s.io/v1beta1\nkind: NetworkPolicy\nmetadata: {name: old}\n" +
		"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: typo}\nspec:\n  podSelector: {}\n  ingres: []\n" +
		"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: elsewhere, namespace: other}\nspec: {podSelector: {}}\n"
	code, out, errOut := checkRun(t, in, "-f", "-", "-o", "json", "-n", "shop")
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	wantErr := `netguard: <stdin>#2: apiVersion is missing (kind "NetworkPolicy")
netguard: <stdin>#4: networking.k8s.io/v1beta1 NetworkPolicy is not supported; write NetworkPolicies as networking.k8s.io/v1
netguard: <stdin>#5: networking.k8s.io/v1 NetworkPolicy: strict decoding error: unknown field "spec.ingres"
netguard: <stdin>#6: NetworkPolicy "elsewhere" is in namespace "other", not in "shop" given by --namespace
`
	if errOut != wantErr {
		t.Errorf("stderr:\n%s\nwant:\n%s", errOut, wantErr)
	}
	var report struct {
		Results []struct {
			Namespace, Name, Source string
			Allowed                 bool
		}
		Errors []struct{ Source, Message string }
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got []string
	for _, r := range report.Results {
		got = append(got, r.Source+" "+r.Namespace+"/"+r.Name)
	}
	if want := []string{"<stdin>#1 shop/api-from-web", "<stdin>#3 shop/open"}; !reflect.DeepEqual(got, want) {
		t.Errorf("results %q, want %q", got, want)
	}
	if len(report.Errors) != 4 || report.Errors[0].Source != "<stdin>#2" || report.Errors[0].Message != `apiVersion is missing (kind "NetworkPolicy")` {
		t.Errorf("errors %+v", report.Errors)
	}

	// Text output still reports the good documents.
	code, out, _ = checkRun(t, in, "-f", "-", "-n", "shop")
	if code != 2 || !strings.Contains(out, "<stdin>#3: NetworkPolicy shop/open violates restricted:latest") ||
		!strings.HasSuffix(out, "2 NetworkPolicies checked against restricted:latest: 1 allowed, 1 not allowed (2 violations); 4 inputs could not be checked\n") {
		t.Errorf("exit %d, stdout:\n%s", code, out)
	}
}

func TestCheckDirectoriesAndLists(t *testing.T) {
	dir := t.TempDir()
	list := `apiVersion: v1
kind: List
items:
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: listed-good, namespace: shop}
  spec:
    podSelector: {matchLabels: {app: a}}
    policyTypes: [Ingress]
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: listed-open, namespace: shop}
  spec:
    podSelector: {matchLabels: {app: a}}
    policyTypes: [Egress]
    egress:
    - to: [{ipBlock: {cidr: 0.0.0.0/0}}]
      ports: [{port: 443}]
`
	writeFiles(t, dir, map[string]string{
		"a/good.yaml":         checkGood,
		"a/b/c/list.yml":      list,
		"a/b/notes.txt":       "not read",
		"z/same.json":         `{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"from-json","namespace":"shop"},"spec":{"podSelector":{}}}`,
		"z/configmap.yaml":    checkConfigMap,
		"z/empty.yaml":        "# nothing here\n",
		"z/same-ns.yaml":      checkSameNamespace,
		"z/zz/deny-all.yaml":  "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny}\nspec: {podSelector: {}}\n",
		"z/zz/also/deny.yaml": "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny2}\nspec: {podSelector: {}}\n",
	})
	code, out, errOut := checkRun(t, "", "-f", dir, "--level", "baseline", "-n", "shop")
	want := filepath.Join(dir, "a/b/c/list.yml") + `#1.items[1]: NetworkPolicy shop/listed-open violates baseline:latest
  ` + filepath.Join(dir, "a/b/c/list.yml") + `:17:13: [egressToIPBlock] spec.egress[0].to[0].ipBlock: allows traffic to every IPv4 address (0.0.0.0/0); IP addresses are outside the namespace and reserved for platform NetworkProfiles: use one instead

7 NetworkPolicies checked against baseline:latest: 6 allowed, 1 not allowed (1 violation); 1 object of other kinds skipped
`
	if code != 1 || out != want || errOut != "" {
		t.Errorf("exit %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", code, out, want, errOut)
	}

	code, out, _ = checkRun(t, "", "-f", dir, "-o", "json", "-n", "shop")
	var report struct{ Results []struct{ Source string } }
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatal(err)
	}
	var sources []string
	for _, r := range report.Results {
		rel, _ := filepath.Rel(dir, r.Source)
		sources = append(sources, rel)
	}
	wantSources := []string{
		"a/b/c/list.yml#1.items[0]", "a/b/c/list.yml#1.items[1]", "a/good.yaml#1",
		"z/same-ns.yaml#1", "z/same.json#1", "z/zz/also/deny.yaml#1", "z/zz/deny-all.yaml#1",
	}
	if code != 1 || !reflect.DeepEqual(sources, wantSources) {
		t.Errorf("exit %d, sources %q, want %q", code, sources, wantSources)
	}

	// A missing path is bad input; the other paths are still checked.
	code, out, errOut = checkRun(t, "", "-f", filepath.Join(dir, "missing"), "-f", filepath.Join(dir, "a/good.yaml"))
	if code != 2 || errOut != "netguard: "+filepath.Join(dir, "missing")+": no such file or directory\n" ||
		!strings.HasPrefix(out, "1 NetworkPolicy checked against restricted:latest: 1 allowed") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

func TestCheckNamespaceDefaulting(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "default/open"},
		{[]string{"-n", "team-a"}, "team-a/open"},
		{[]string{"--namespace=team-b"}, "team-b/open"},
	} {
		code, out, _ := checkRun(t, checkOpen, append([]string{"-f", "-", "-o", "json"}, tc.args...)...)
		var report struct {
			Results []struct{ Namespace, Name string }
		}
		if err := json.Unmarshal([]byte(out), &report); err != nil || code != 1 || len(report.Results) != 1 {
			t.Fatalf("%v: exit %d, %v\n%s", tc.args, code, err, out)
		}
		if got := report.Results[0].Namespace + "/" + report.Results[0].Name; got != tc.want {
			t.Errorf("%v: %s, want %s", tc.args, got, tc.want)
		}
	}

	// The namespace matters to the verdict: a pin to "shop" is the own
	// namespace only for a policy in shop.
	pinned := `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: pinned}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: shop}}
      podSelector: {matchLabels: {app: web}}
    ports: [{port: 8080}]
`
	if code, out, _ := checkRun(t, pinned, "-f", "-", "-n", "shop"); code != 0 {
		t.Errorf("in shop: exit %d\n%s", code, out)
	}
	if code, out, _ := checkRun(t, pinned, "-f", "-"); code != 1 || !strings.Contains(out, "[ingressFromOtherNamespaces]") {
		t.Errorf("in default: exit %d\n%s", code, out)
	}
}
