package v1alpha1

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const header = "apiVersion: netguard.io/v1alpha1\nkind: NetguardConfiguration\n"

// A file says only what it changes: what it leaves out keeps the built-in
// value, and what it sets replaces it whole, lists and zero values included.
func TestLoadOverDefaults(t *testing.T) {
	got, err := Load([]byte(header + "defaults:\n  enforce: restricted\nexemptions:\n  namespaces: []\n  usernames: [ci-bot]\naudit:\n  interval: 0s\ncrossNamespace:\n  enabled: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Defaults.Enforce = "restricted"
	want.Exemptions = Exemptions{Namespaces: []string{}, Usernames: []string{"ci-bot"}}
	want.Audit.Interval.Duration = 0 // Validate refuses it; Load keeps what was written
	disabled := false
	want.CrossNamespace.Enabled = &disabled
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if d := Default(); d.Audit.Interval.Duration != time.Minute || !*d.CrossNamespace.Enabled || d.CrossNamespace.MaxLevel != "managed" {
		t.Errorf("loading changed the built-in values: %+v", d)
	}
	if errs := Validate(Default()); len(errs) > 0 {
		t.Errorf("the built-in configuration is invalid: %v", errs)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string
	}{
		{"empty", " \n", "file is empty; write apiVersion: netguard.io/v1alpha1 and kind: NetguardConfiguration"},
		{"unknown field", header + "defualts: {}\n", `unknown field "defualts"`}, //nolint:misspell // the typo is the input
		{"wrong type", header + "audit:\n  maxObjectsPerCycle: many\n", "maxObjectsPerCycle"},
		{"wrong kind", "apiVersion: netguard.io/v1alpha1\nkind: AdmissionConfiguration\n", `apiVersion "netguard.io/v1alpha1", kind "AdmissionConfiguration": want apiVersion netguard.io/v1alpha1, kind NetguardConfiguration`},
		{"no apiVersion", "kind: NetguardConfiguration\n", `apiVersion "", kind "NetguardConfiguration": want apiVersion netguard.io/v1alpha1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
