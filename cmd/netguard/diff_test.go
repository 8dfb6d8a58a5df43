package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiff changes an annotation (web now also depends on the database) and
// removes a hand-written policy (monitoring loses its scrape of api), and
// reads the opened and closed connections in every output form.
func TestDiff(t *testing.T) {
	dir := t.TempDir()
	newShop := strings.Replace(genShop, `netguard.io/depends-on: "api:8080"`, `netguard.io/depends-on: "api:8080,db:postgres"`, 1)
	if newShop == genShop {
		t.Fatal("fixture: depends-on not found")
	}
	writeFiles(t, dir, map[string]string{
		"old/shop.yaml":     genShop,
		"old/profiles.yaml": genProfiles,
		"old/extra.yaml":    reachExtra,
		"new/shop.yaml":     newShop,
		"new/profiles.yaml": genProfiles,
		// reachExtra without the metrics policy (its third document).
		"new/extra.yaml": strings.Join(append(strings.Split(reachExtra, "---\n")[:2], strings.Split(reachExtra, "---\n")[3]), "---\n"),
	})
	diff := func(stdin string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"diff"}, args...), ioStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut})
		return code, out.String(), errOut.String()
	}
	oldDir, newDir := filepath.Join(dir, "old"), filepath.Join(dir, "new")

	code, out, errOut := diff("", oldDir, newDir)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (widened); stderr %s", code, errOut)
	}
	want := oldDir + " -> " + newDir + `: 1 connection opened, 2 connections closed: connectivity widened

Opened:
  shop/web (Deployment)
    -> shop/postgres (StatefulSet): 5432/TCP

Closed:
  monitoring/prometheus-0
    -> shop/api: 9999/TCP
    -> shop/api (StatefulSet): 8080/TCP
`
	if out != want {
		t.Errorf("text:\n%s\nwant:\n%s", out, want)
	}

	// The reverse change only closes: exit 0. Stdin works for one side.
	code, out, _ = diff(genShop+"---\n"+genProfiles+"---\n"+reachExtra, newDir, "-", "-o", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1: the scrape reopens", code)
	}
	var r struct {
		Widened                  bool
		OpenedCount, ClosedCount int
		Opened, Closed           []struct {
			From, To struct{ Name, Kind, Side string }
			Ports    []string
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if !r.Widened || r.OpenedCount != 2 || r.ClosedCount != 1 || len(r.Closed) != 1 ||
		r.Closed[0].From.Name != "shop/web" || r.Closed[0].To.Kind != "StatefulSet" || strings.Join(r.Closed[0].Ports, ",") != "5432/TCP" {
		t.Errorf("json %+v", r)
	}

	// Only closing: not widened.
	onlyClose := strings.Join(append(strings.Split(reachExtra, "---\n")[:2], strings.Split(reachExtra, "---\n")[3]), "---\n")
	writeFiles(t, dir, map[string]string{"closing/shop.yaml": genShop, "closing/profiles.yaml": genProfiles, "closing/extra.yaml": onlyClose})
	code, out, _ = diff("", oldDir, filepath.Join(dir, "closing"), "-o", "markdown")
	if code != 0 {
		t.Errorf("exit %d, want 0: nothing opened", code)
	}
	for _, s := range []string{
		"### netguard diff\n",
		":white_check_mark: 0 connections opened, 2 connections closed: connectivity did not widen",
		"#### Closed\n\n| From | To | Ports |\n| --- | --- | --- |\n| monitoring/prometheus-0 | shop/api | 9999/TCP |\n",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("markdown lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "#### Opened") {
		t.Errorf("markdown has an empty Opened section:\n%s", out)
	}

	// A new workload's connections count as opened.
	extraWorkload := "---\napiVersion: v1\nkind: Pod\nmetadata: {name: debug, namespace: monitoring}\nspec: {containers: [{name: d, image: d, ports: [{containerPort: 22}]}]}\n"
	writeFiles(t, dir, map[string]string{"added/all.yaml": genShop + "---\n" + genProfiles + "---\n" + reachExtra + extraWorkload})
	code, out, _ = diff("", oldDir, filepath.Join(dir, "added"))
	if code != 1 || !strings.Contains(out, "monitoring/debug [new only]") {
		t.Errorf("exit %d:\n%s", code, out)
	}

	if code, _, errOut := diff("", "-", "-"); code != 2 || !strings.Contains(errOut, "only one of OLD and NEW") {
		t.Errorf("- -: exit %d %s", code, errOut)
	}
}
