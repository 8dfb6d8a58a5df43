package webhook_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/traits"
	"sigs.k8s.io/yaml"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// TestCELCleanAgreesWithViolations evaluates, with the API server's own CEL
// environment, rules.CELCleanExpression and rules.CELViolationsExpression
// on every NetworkPolicy of the check corpus and the bypass corpus, at every
// level: clean must be true exactly when the list is empty. The admission
// policies skip building the list when clean is true, so a clean that is
// true too often would lose a denial or a warning. Only the objects in the
// part CEL decides (rules.CELShapeExpression) are compared: the admission
// policies never evaluate the others.
func TestCELCleanAgreesWithViolations(t *testing.T) {
	clean, violations := map[rules.Level]cel.Program{}, map[rules.Level]cel.Program{}
	for _, l := range rules.Levels() {
		rank := strconv.Itoa(l.Rank())
		clean[l], violations[l] = webhooktest.CEL(t, rules.CELCleanExpression(rank)), webhooktest.CEL(t, rules.CELViolationsExpression(rank, `"ns"`))
	}
	shape := webhooktest.CEL(t, rules.CELShapeExpression())

	objects := map[string]map[string]any{}
	files, _ := filepath.Glob("../rules/testdata/*/*/*.yaml")
	seeds, _ := filepath.Glob("../rules/testdata/seeds/*.yaml")
	for _, f := range append(files, seeds...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, part := range bytes.Split(data, []byte("\n---")) {
			var obj map[string]any
			if yaml.Unmarshal(part, &obj) == nil && obj["kind"] == "NetworkPolicy" {
				objects[f+"#"+strconv.Itoa(i)] = obj
			}
		}
	}
	for _, b := range webhooktest.BypassCorpus() {
		raw := b.Obj
		if raw == "" {
			raw = `{"metadata":{"name":"p"},"spec":` + b.Spec + `}`
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(raw), &obj); err == nil {
			objects["bypass: "+b.Name] = obj
		}
	}
	if len(objects) < 50 {
		t.Fatalf("only %d objects in the corpus: the test would prove little", len(objects))
	}
	var evaluated, withViolations, outside int
	for name, obj := range objects {
		if in, _, err := shape.Eval(map[string]any{"object": obj}); err != nil || in != types.True {
			outside++
			continue
		}
		for _, l := range rules.Levels() {
			in := map[string]any{"object": obj}
			c, _, cerr := clean[l].Eval(in)
			v, _, verr := violations[l].Eval(in)
			if cerr != nil || verr != nil {
				t.Errorf("%s at %s: clean error %v, violations error %v", name, l, cerr, verr)
				continue
			}
			list, ok := v.(traits.Lister)
			if !ok {
				t.Fatalf("%s: violations is a %T", name, v)
			}
			size, _ := list.Size().(types.Int)
			evaluated++
			if size > 0 {
				withViolations++
			}
			if c != types.Bool(size == 0) {
				t.Errorf("%s at %s: clean is %v with %d violations: %v", name, l, c, size, v)
			}
		}
	}
	t.Logf("%d objects, %d outside the part CEL decides; %d evaluations, %d with violations", len(objects), outside, evaluated, withViolations)
	if withViolations == 0 || withViolations == evaluated {
		t.Fatalf("%d of %d evaluations have violations: the corpus does not exercise both answers", withViolations, evaluated)
	}
}
