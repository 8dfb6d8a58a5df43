package v1alpha1

import (
	"bytes"
	"fmt"

	"sigs.k8s.io/yaml"
)

// Load decodes a NetguardConfiguration file over Default. The decoding is
// strict: an unknown field (a typo) is an error rather than a silent
// fallback to the built-in value. Load checks apiVersion and kind; Validate
// checks the values. Errors do not name the file: the caller knows it.
func Load(data []byte) (*NetguardConfiguration, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("file is empty; write apiVersion: %s and kind: %s", APIVersion, Kind)
	}
	c := Default()
	// apiVersion and kind are required: they must come from the file.
	c.APIVersion, c.Kind = "", ""
	if err := yaml.UnmarshalStrict(data, c); err != nil {
		return nil, err
	}
	if c.APIVersion != APIVersion || c.Kind != Kind {
		return nil, fmt.Errorf("apiVersion %q, kind %q: want apiVersion %s, kind %s", c.APIVersion, c.Kind, APIVersion, Kind)
	}
	return c, nil
}
