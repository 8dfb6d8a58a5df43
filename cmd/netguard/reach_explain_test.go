package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestReachExplain traces a generated dependency (annotations and profiles
// of generate_test.go's shop) in text and JSON, and a denied connection.
func TestReachExplain(t *testing.T) {
	stdin := genShop + "---\n" + genProfiles + "---\n" + reachExtra
	reach := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"reach", "-f", "-"}, args...), ioStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
		return code, out.String(), errOut.String()
	}

	code, out, errOut := reach("--from", "shop/web", "--to", "shop/statefulset/api", "--port", "8080", "--explain")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"shop/web -> shop/api on 8080/TCP: allowed\n",
		"1. Egress of shop/web: allowed\n",
		"   - shop/netguard.web.depends-on selects it and allows it\n",
		"2. Ingress of shop/api: allowed\n",
		"   - shop/netguard.web.to.api selects it and allows it\n",
		"   - shop/netguard-default-deny selects it and does not allow it\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
	// Egress comes before ingress, as the dataplane decides.
	if strings.Index(out, "1. Egress") > strings.Index(out, "2. Ingress") {
		t.Errorf("egress must come first:\n%s", out)
	}

	code, out, _ = reach("--from", "shop/statefulset/api", "--to", "shop/web", "--port", "80", "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (denied)", code)
	}
	var x struct {
		From, To, Port string
		Allowed        bool
		Egress         struct {
			Restricted, Allowed bool
			Policies            []struct {
				Policy  string
				Selects bool
				Allowed bool
				Rules   []struct {
					Field      string
					NotAllowed []string
				}
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &x); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if x.From != "shop/api" || x.To != "shop/web" || x.Port != "80/TCP" || x.Allowed || !x.Egress.Restricted || x.Egress.Allowed {
		t.Errorf("trace %+v", x)
	}
	reasons := 0
	for _, p := range x.Egress.Policies {
		if p.Selects && p.Allowed {
			t.Errorf("%s allows a denied connection", p.Policy)
		}
		for _, r := range p.Rules {
			reasons += len(r.NotAllowed)
		}
	}
	if reasons == 0 {
		t.Errorf("a denied trace must say why each rule does not allow it:\n%s", out)
	}

	if code, _, errOut := reach("--matrix", "--explain"); code != 2 || !strings.Contains(errOut, "leave out --matrix") {
		t.Errorf("--matrix --explain: exit %d, %s", code, errOut)
	}
}
