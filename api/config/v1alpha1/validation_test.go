package v1alpha1

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

func TestValidate(t *testing.T) {
	levelDetail := func(s string) string {
		return `unknown level "` + s + `"; use privileged, baseline, restricted or managed, optionally with :v<major>.<minor>`
	}
	cases := []struct {
		name   string
		change func(*NetguardConfiguration)
		want   field.ErrorList
	}{
		{name: "built-in values", change: func(*NetguardConfiguration) {}},
		{name: "pinned and latest versions", change: func(c *NetguardConfiguration) {
			c.Defaults = LevelDefaults{Enforce: "baseline:v1.0", Audit: "managed:latest", Warn: "privileged"}
		}},
		{name: "zero bounds mean the defaults", change: func(c *NetguardConfiguration) {
			c.Audit.MaxObjectsPerCycle, c.Admission.MaxConcurrentEvaluations = 0, 0
		}},
		{name: "unset maxLevel", change: func(c *NetguardConfiguration) { c.CrossNamespace.MaxLevel = "" }},
		{name: "unknown levels", change: func(c *NetguardConfiguration) {
			c.Defaults = LevelDefaults{Enforce: "strict", Audit: "", Warn: "Baseline"}
		}, want: field.ErrorList{
			field.Invalid(field.NewPath("defaults", "enforce"), "strict", levelDetail("strict")),
			field.Invalid(field.NewPath("defaults", "audit"), "", levelDetail("")),
			field.Invalid(field.NewPath("defaults", "warn"), "Baseline", levelDetail("Baseline")),
		}},
		{name: "unknown version", change: func(c *NetguardConfiguration) { c.Defaults.Warn = "baseline:1.0" }, want: field.ErrorList{
			field.Invalid(field.NewPath("defaults", "warn"), "baseline:1.0", `unknown version "1.0": must be "latest" or "v<major>.<minor>" such as "v1.0"`),
		}},
		{name: "the level of a bad version is read up to the last colon", change: func(c *NetguardConfiguration) { c.Defaults.Audit = "restricted:latest:x" }, want: field.ErrorList{
			field.Invalid(field.NewPath("defaults", "audit"), "restricted:latest:x", levelDetail("restricted:latest:x")),
		}},
		{name: "audit bounds", change: func(c *NetguardConfiguration) {
			c.Audit.Interval.Duration = -time.Second
			c.Audit.MaxObjectsPerCycle = -1
		}, want: field.ErrorList{
			field.Invalid(field.NewPath("audit", "interval"), "-1s", "must be greater than 0"),
			field.Invalid(field.NewPath("audit", "maxObjectsPerCycle"), -1, "must not be negative (0 means 5000)"),
		}},
		{name: "cross-namespace level", change: func(c *NetguardConfiguration) { c.CrossNamespace.MaxLevel = "strict" }, want: field.ErrorList{
			field.NotSupported(field.NewPath("crossNamespace", "maxLevel"), "strict", []string{"privileged", "baseline", "restricted", "managed"}),
		}},
		{name: "admission bound", change: func(c *NetguardConfiguration) { c.Admission.MaxConcurrentEvaluations = -1 }, want: field.ErrorList{
			field.Invalid(field.NewPath("admission", "maxConcurrentEvaluations"), -1, "must not be negative (0 means 32)"),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.change(c)
			if got := Validate(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

// What a user reads: the field path, the value and what to write instead.
func TestValidateMessages(t *testing.T) {
	c := Default()
	c.Defaults.Enforce = "strict"
	c.Audit.Interval.Duration = 0
	c.CrossNamespace.MaxLevel = "none"
	var got []string
	for _, e := range Validate(c) {
		got = append(got, e.Error())
	}
	want := []string{
		`defaults.enforce: Invalid value: "strict": unknown level "strict"; use privileged, baseline, restricted or managed, optionally with :v<major>.<minor>`,
		`audit.interval: Invalid value: "0s": must be greater than 0`,
		`crossNamespace.maxLevel: Unsupported value: "none": supported values: "privileged", "baseline", "restricted", "managed"`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
