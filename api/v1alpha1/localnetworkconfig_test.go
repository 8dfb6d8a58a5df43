package v1alpha1

import (
	"os"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestLocalNetworkConfigCRDDescribesEveryField keeps `kubectl explain`
// useful: every property of the schema has a description.
func TestLocalNetworkConfigCRDDescribesEveryField(t *testing.T) {
	data, err := os.ReadFile("../../charts/netguard/crds/netguard.io_localnetworkconfigs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Scope    string
			Versions []struct {
				Name                     string
				Subresources             map[string]any
				AdditionalPrinterColumns []map[string]any `json:"additionalPrinterColumns"`
				Schema                   struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				}
			}
		}
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	if crd.Spec.Scope != "Namespaced" || len(crd.Spec.Versions) != 1 {
		t.Fatalf("scope %q, %d versions", crd.Spec.Scope, len(crd.Spec.Versions))
	}
	v := crd.Spec.Versions[0]
	if _, ok := v.Subresources["status"]; !ok || len(v.AdditionalPrinterColumns) < 3 {
		t.Errorf("status subresource %v, printer columns %v", v.Subresources, v.AdditionalPrinterColumns)
	}
	var walk func(path string, s map[string]any)
	walk = func(path string, s map[string]any) {
		props, _ := s["properties"].(map[string]any)
		for name, p := range props {
			ps := p.(map[string]any)
			// metadata is the API server's ObjectMeta, described there.
			if d, _ := ps["description"].(string); d == "" && !(path == "" && name == "metadata") {
				t.Errorf("%s.%s has no description", path, name)
			}
			walk(path+"."+name, ps)
		}
		if items, ok := s["items"].(map[string]any); ok {
			walk(path+"[]", items)
		}
		if ap, ok := s["additionalProperties"].(map[string]any); ok {
			walk(path+"{}", ap)
		}
	}
	walk("", v.Schema.OpenAPIV3Schema)
}
