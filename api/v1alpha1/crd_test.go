package v1alpha1

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const crdFile = "../../charts/netguard/crds/netguard.io_networkprofiles.yaml"

// openAPISchema is the part of an OpenAPI v3 schema these tests read.
type openAPISchema struct {
	Type                 string                    `json:"type"`
	Properties           map[string]*openAPISchema `json:"properties"`
	Items                *openAPISchema            `json:"items"`
	AdditionalProperties *openAPISchema            `json:"additionalProperties"`
	Required             []string                  `json:"required"`
	IntOrString          bool                      `json:"x-kubernetes-int-or-string"`
	PreserveUnknown      bool                      `json:"x-kubernetes-preserve-unknown-fields"`
	MaxItems             *int                      `json:"maxItems"`
	MaxLength            *int                      `json:"maxLength"`
	Validations          []struct {
		Rule    string `json:"rule"`
		Message string `json:"message"`
	} `json:"x-kubernetes-validations"`
}

type crd struct {
	Spec struct {
		Group string `json:"group"`
		Scope string `json:"scope"`
		Names struct {
			Kind     string `json:"kind"`
			ListKind string `json:"listKind"`
			Plural   string `json:"plural"`
		} `json:"names"`
		Versions []struct {
			Name         string `json:"name"`
			Served       bool   `json:"served"`
			Storage      bool   `json:"storage"`
			Subresources struct {
				Status *struct{} `json:"status"`
			} `json:"subresources"`
			PrinterColumn []struct {
				Name     string `json:"name"`
				JSONPath string `json:"jsonPath"`
			} `json:"additionalPrinterColumns"`
			Schema struct {
				OpenAPIV3Schema *openAPISchema `json:"openAPIV3Schema"`
			} `json:"schema"`
		} `json:"versions"`
	} `json:"spec"`
}

func loadCRD(t *testing.T) crd {
	t.Helper()
	b, err := os.ReadFile(crdFile)
	if err != nil {
		t.Fatal(err)
	}
	var c crd
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCRDIdentity(t *testing.T) {
	c := loadCRD(t)
	if c.Spec.Group != GroupVersion.Group || c.Spec.Scope != "Cluster" || c.Spec.Names.Kind != "NetworkProfile" || c.Spec.Names.ListKind != "NetworkProfileList" || c.Spec.Names.Plural != "networkprofiles" {
		t.Errorf("CRD names: %+v", c.Spec)
	}
	if len(c.Spec.Versions) != 1 || c.Spec.Versions[0].Name != GroupVersion.Version || !c.Spec.Versions[0].Served || !c.Spec.Versions[0].Storage {
		t.Fatalf("CRD versions: %+v", c.Spec.Versions)
	}
	var cols []string
	for _, pc := range c.Spec.Versions[0].PrinterColumn {
		cols = append(cols, pc.Name+"="+pc.JSONPath)
	}
	if want := []string{"Used-By=.status.usedBy", "Description=.spec.description", "Age=.metadata.creationTimestamp"}; !reflect.DeepEqual(cols, want) {
		t.Errorf("printer columns %q", cols)
	}
	// netguard writes status.usedBy through the status subresource, so that
	// its RBAC (networkprofiles/status) cannot change a profile's rules.
	if c.Spec.Versions[0].Subresources.Status == nil {
		t.Error("the status subresource is not enabled")
	}
	spec := c.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	if len(spec.Validations) != 1 || !strings.Contains(spec.Validations[0].Rule, "size(self.egress) > 0") {
		t.Errorf("spec validations: %+v", spec.Validations)
	}
	if spec.Properties["ingress"].MaxItems == nil || spec.Properties["description"].MaxLength == nil {
		t.Error("limits on spec fields are missing")
	}
	if !reflect.DeepEqual(c.Spec.Versions[0].Schema.OpenAPIV3Schema.Required, []string{"spec"}) {
		t.Errorf("required: %v", c.Spec.Versions[0].Schema.OpenAPIV3Schema.Required)
	}
}

// Every JSON field of the Go types has a place in the CRD schema with a
// matching type, and the schema has no field the Go types lack. A change to
// the types without ./hack/gen-api.sh fails here.
func TestCRDSchemaMatchesGoTypes(t *testing.T) {
	root := loadCRD(t).Spec.Versions[0].Schema.OpenAPIV3Schema
	var problems []string
	compareType(reflect.TypeOf(NetworkProfile{}), root, "", &problems, 0)
	if len(problems) > 0 {
		sort.Strings(problems)
		t.Errorf("CRD schema and Go types disagree (run ./hack/gen-api.sh):\n%s", strings.Join(problems, "\n"))
	}
}

var (
	objectMetaType = reflect.TypeOf(metav1.ObjectMeta{})
	intOrStrType   = reflect.TypeOf(intstr.IntOrString{})
	timeType       = reflect.TypeOf(metav1.Time{})
)

func compareType(typ reflect.Type, s *openAPISchema, path string, problems *[]string, depth int) {
	if depth > 20 {
		*problems = append(*problems, path+": nesting too deep")
		return
	}
	if s == nil {
		*problems = append(*problems, path+": missing from the schema")
		return
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch {
	case typ == objectMetaType:
		if s.Type != "object" {
			*problems = append(*problems, path+": metadata is not an object")
		}
		return // the API server owns metadata's schema
	case typ == intOrStrType:
		if !s.IntOrString {
			*problems = append(*problems, path+": not x-kubernetes-int-or-string")
		}
		return
	case typ == timeType:
		if s.Type != "string" {
			*problems = append(*problems, path+": time is not a string")
		}
		return
	}
	want := map[reflect.Kind]string{
		reflect.String: "string", reflect.Bool: "boolean",
		reflect.Int32: "integer", reflect.Int64: "integer", reflect.Int: "integer",
		reflect.Struct: "object", reflect.Map: "object", reflect.Slice: "array",
	}[typ.Kind()]
	if s.Type != want {
		*problems = append(*problems, fmt.Sprintf("%s: schema type %q, Go kind %s", path, s.Type, typ.Kind()))
		return
	}
	switch typ.Kind() {
	case reflect.Slice:
		compareType(typ.Elem(), s.Items, path+"[]", problems, depth+1)
	case reflect.Map:
		if s.AdditionalProperties == nil {
			*problems = append(*problems, path+": map without additionalProperties")
			return
		}
		compareType(typ.Elem(), s.AdditionalProperties, path+"{}", problems, depth+1)
	case reflect.Struct:
		fields := map[string]bool{}
		collectFields(typ, func(name string, ft reflect.Type) {
			fields[name] = true
			compareType(ft, s.Properties[name], path+"."+name, problems, depth+1)
		})
		for name := range s.Properties {
			if !fields[name] {
				*problems = append(*problems, fmt.Sprintf("%s.%s: in the schema but not in the Go type", path, name))
			}
		}
	}
}

// collectFields calls f for each JSON field of a struct, descending into
// inlined embedded structs.
func collectFields(typ reflect.Type, f func(name string, ft reflect.Type)) {
	for i := 0; i < typ.NumField(); i++ {
		sf := typ.Field(i)
		tag := sf.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !sf.IsExported() {
			continue
		}
		if sf.Anonymous && (name == "" || strings.Contains(opts, "inline")) {
			collectFields(sf.Type, f)
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f(name, sf.Type)
	}
}

// The example profiles in docs/profiles decode strictly into the Go type and
// keep every field through the CRD schema: nothing the API server would
// prune, nothing of the wrong type.
func TestExampleProfilesFitTheSchema(t *testing.T) {
	root := loadCRD(t).Spec.Versions[0].Schema.OpenAPIV3Schema
	files, err := filepath.Glob("../../docs/profiles/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example profiles: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for doc := 1; ; doc++ {
			raw, err := r.Read()
			if err != nil {
				break
			}
			if len(bytes.TrimSpace(raw)) == 0 {
				continue
			}
			where := fmt.Sprintf("%s#%d", file, doc)
			var p NetworkProfile
			if err := yaml.UnmarshalStrict(raw, &p); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if p.APIVersion != GroupVersion.String() || p.Kind != "NetworkProfile" || p.Name == "" {
				t.Errorf("%s: not a NetworkProfile: %s %s %q", where, p.APIVersion, p.Kind, p.Name)
			}
			if len(p.Spec.Ingress) == 0 && len(p.Spec.Egress) == 0 {
				t.Errorf("%s: the CRD's validation rule rejects a profile without rules", where)
			}
			js, err := yaml.YAMLToJSON(raw)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(js, &v); err != nil {
				t.Fatal(err)
			}
			var problems []string
			checkValue(v, root, "", &problems)
			for _, pr := range problems {
				t.Errorf("%s: %s", where, pr)
			}
		}
	}
}

// checkValue is a small structural-schema check: every field must be in the
// schema (or the API server prunes it) with the schema's type.
func checkValue(v any, s *openAPISchema, path string, problems *[]string) {
	if s == nil {
		*problems = append(*problems, path+": not in the schema, the API server would drop it")
		return
	}
	if s.IntOrString {
		switch v.(type) {
		case string, float64:
		default:
			*problems = append(*problems, path+": must be an integer or a string")
		}
		return
	}
	switch val := v.(type) {
	case map[string]any:
		if s.Type != "object" {
			*problems = append(*problems, fmt.Sprintf("%s: object where the schema wants %s", path, s.Type))
			return
		}
		if path == ".metadata" || s.PreserveUnknown {
			return
		}
		for k, child := range val {
			next := s.Properties[k]
			if next == nil && s.AdditionalProperties != nil {
				next = s.AdditionalProperties
			}
			checkValue(child, next, path+"."+k, problems)
		}
		for _, req := range s.Required {
			if _, ok := val[req]; !ok {
				*problems = append(*problems, fmt.Sprintf("%s: required field %q is missing", path, req))
			}
		}
	case []any:
		if s.Type != "array" {
			*problems = append(*problems, fmt.Sprintf("%s: array where the schema wants %s", path, s.Type))
			return
		}
		if s.MaxItems != nil && len(val) > *s.MaxItems {
			*problems = append(*problems, fmt.Sprintf("%s: more than %d items", path, *s.MaxItems))
		}
		for i, item := range val {
			checkValue(item, s.Items, fmt.Sprintf("%s[%d]", path, i), problems)
		}
	case string:
		if s.Type != "string" {
			*problems = append(*problems, fmt.Sprintf("%s: string where the schema wants %s", path, s.Type))
		}
		if s.MaxLength != nil && len(val) > *s.MaxLength {
			*problems = append(*problems, fmt.Sprintf("%s: longer than %d", path, *s.MaxLength))
		}
	case float64:
		if s.Type != "integer" && s.Type != "number" {
			*problems = append(*problems, fmt.Sprintf("%s: number where the schema wants %s", path, s.Type))
		}
	case bool:
		if s.Type != "boolean" {
			*problems = append(*problems, fmt.Sprintf("%s: boolean where the schema wants %s", path, s.Type))
		}
	}
}
