package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	configv1alpha1 "github.com/netguard/netguard/api/config/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook"
)

// resolveAdmissionConfig runs the steps `serve` runs before it starts the
// manager: parse the flags, load --config, apply the flags that were given,
// and build the admission configuration.
func resolveAdmissionConfig(t *testing.T, file string, flags ...string) (webhook.Config, error) {
	t.Helper()
	if file != "" {
		path := filepath.Join(t.TempDir(), "netguard.yaml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		flags = append([]string{"--config", path}, flags...)
	}
	o := defaultServeOptions()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(flags); err != nil {
		return webhook.Config{}, err
	}
	cfg, err := loadServeConfig(o.ConfigFile)
	if err != nil {
		return webhook.Config{}, err
	}
	if err := o.mergeFlags(fs, cfg); err != nil {
		return webhook.Config{}, err
	}
	return o.webhookConfig(cfg)
}

func lv(level rules.Level) webhook.LevelVersion {
	return webhook.LevelVersion{Level: level, Version: rules.LatestVersion()}
}

func lvPinned(level rules.Level, major, minor int) webhook.LevelVersion {
	return webhook.LevelVersion{Level: level, Version: rules.MajorMinorVersion(major, minor)}
}

// normalize makes empty lists nil, so that "none" compares equal however it
// was spelled.
func normalize(c webhook.Config) webhook.Config {
	for _, l := range []*[]string{&c.ExemptUsernames, &c.ExemptGroups, &c.ExemptNamespaces, &c.PlatformUsernames, &c.PlatformGroups} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	return c
}

const fullFile = `apiVersion: netguard.io/v1alpha1
kind: NetguardConfiguration
defaults:
  enforce: restricted
  audit: managed
  warn: baseline:v1.0
exemptions:
  usernames: [ci-bot]
  groups: [system:nodes]
  namespaces: [sandbox]
platformIdentities:
  usernames: [bob]
  groups: [platform-admins]
admission:
  maxConcurrentEvaluations: 8
crossNamespace:
  maxLevel: baseline
`

// fromFullFile is what fullFile alone gives.
func fromFullFile() webhook.Config {
	return webhook.Config{
		Defaults: webhook.Policy{
			Enforce: lv(rules.LevelRestricted),
			Audit:   lv(rules.LevelManaged),
			Warn:    lvPinned(rules.LevelBaseline, 1, 0),
		},
		ExemptUsernames:          []string{"ci-bot"},
		ExemptGroups:             []string{"system:nodes"},
		ExemptNamespaces:         []string{"kube-system", "netguard-system", "sandbox"},
		PlatformUsernames:        []string{"bob"},
		PlatformGroups:           []string{"platform-admins"},
		MaxConcurrentEvaluations: 8,
		CrossNamespace:           rules.CrossNamespaceConfig{MaxLevel: rules.LevelBaseline},
	}
}

// TestFlagsOverrideConfigFile proves the precedence docs/configuration.md
// documents: built-in defaults, then the file field by field, then each flag
// that was given, which replaces its field whole (lists are replaced, not
// merged). kube-system and netguard's own namespace are always exempt.
func TestFlagsOverrideConfigFile(t *testing.T) {
	defaults := webhook.Config{
		Defaults:                 webhook.Policy{Enforce: lv(rules.LevelBaseline), Audit: lv(rules.LevelRestricted), Warn: lv(rules.LevelRestricted)},
		ExemptNamespaces:         []string{"kube-system", "netguard-system"},
		MaxConcurrentEvaluations: configv1alpha1.DefaultMaxConcurrentEvaluations,
	}
	with := func(base webhook.Config, f func(*webhook.Config)) webhook.Config {
		f(&base)
		return base
	}
	cases := []struct {
		name         string
		podNamespace string
		file         string
		flags        []string
		want         webhook.Config
	}{
		{name: "no file and no flags: built-in defaults", want: defaults},
		{name: "file only", file: fullFile, want: fromFullFile()},
		{name: "a level flag replaces its field and leaves the others",
			file: fullFile, flags: []string{"--default-enforce=privileged"},
			want: with(fromFullFile(), func(c *webhook.Config) { c.Defaults.Enforce = lv(rules.LevelPrivileged) })},
		{name: "a level flag may pin a version",
			file: fullFile, flags: []string{"--default-audit=restricted:v1.0", "--default-warn=managed"},
			want: with(fromFullFile(), func(c *webhook.Config) {
				c.Defaults.Audit = lvPinned(rules.LevelRestricted, 1, 0)
				c.Defaults.Warn = lv(rules.LevelManaged)
			})},
		{name: "a list flag replaces the file's list, it does not add to it",
			file: fullFile, flags: []string{"--exempt-usernames=alice,carol", "--platform-groups=net-admins"},
			want: with(fromFullFile(), func(c *webhook.Config) {
				c.ExemptUsernames = []string{"alice", "carol"}
				c.PlatformGroups = []string{"net-admins"}
			})},
		{name: "--max-concurrent-evaluations replaces admission.maxConcurrentEvaluations",
			file: fullFile, flags: []string{"--max-concurrent-evaluations=64"},
			want: with(fromFullFile(), func(c *webhook.Config) { c.MaxConcurrentEvaluations = 64 })},
		{name: "a list flag given twice is one list",
			file: fullFile, flags: []string{"--exempt-groups=a", "--exempt-groups=b"},
			want: with(fromFullFile(), func(c *webhook.Config) { c.ExemptGroups = []string{"a", "b"} })},
		{name: "an empty list flag clears the file's list",
			file: fullFile, flags: []string{"--platform-usernames=", "--exempt-groups="},
			want: with(fromFullFile(), func(c *webhook.Config) {
				c.PlatformUsernames = nil
				c.ExemptGroups = nil
			})},
		{name: "--exempt-namespaces replaces the file's; kube-system and --namespace stay exempt",
			file: fullFile, flags: []string{"--exempt-namespaces=team-x", "--namespace=netguard"},
			want: with(fromFullFile(), func(c *webhook.Config) { c.ExemptNamespaces = []string{"kube-system", "netguard", "team-x"} })},
		{name: "an empty --exempt-namespaces still exempts kube-system and netguard's namespace",
			flags: []string{"--exempt-namespaces="},
			want:  defaults},
		{name: "$POD_NAMESPACE is netguard's namespace",
			podNamespace: "netguard-prod",
			want:         with(defaults, func(c *webhook.Config) { c.ExemptNamespaces = []string{"kube-system", "netguard-prod"} })},
		{name: "--namespace overrides $POD_NAMESPACE",
			podNamespace: "netguard-prod", flags: []string{"--namespace=ng"},
			want: with(defaults, func(c *webhook.Config) { c.ExemptNamespaces = []string{"kube-system", "ng"} })},
		{name: "a partial file keeps the built-in defaults for what it leaves out",
			file: "apiVersion: netguard.io/v1alpha1\nkind: NetguardConfiguration\ndefaults:\n  enforce: privileged\nexemptions:\n  usernames: [ci-bot]\n",
			want: with(defaults, func(c *webhook.Config) {
				c.Defaults.Enforce = lv(rules.LevelPrivileged)
				c.ExemptUsernames = []string{"ci-bot"}
			})},
		{name: "flags without a file override the built-in defaults",
			flags: []string{"--default-enforce=restricted", "--platform-groups=platform-admins", "--self-username=system:serviceaccount:netguard-system:netguard"},
			want: with(defaults, func(c *webhook.Config) {
				c.Defaults.Enforce = lv(rules.LevelRestricted)
				c.PlatformGroups = []string{"platform-admins"}
				c.SelfUsername = "system:serviceaccount:netguard-system:netguard"
			})},
		{name: "every flag over every field",
			file: fullFile,
			flags: []string{
				"--default-enforce=managed", "--default-audit=baseline", "--default-warn=privileged",
				"--exempt-usernames=u1", "--exempt-groups=g1", "--exempt-namespaces=n1",
				"--platform-usernames=p1", "--platform-groups=pg1", "--self-username=me", "--namespace=ng",
				"--max-concurrent-evaluations=4",
			},
			want: webhook.Config{
				Defaults:          webhook.Policy{Enforce: lv(rules.LevelManaged), Audit: lv(rules.LevelBaseline), Warn: lv(rules.LevelPrivileged)},
				ExemptUsernames:   []string{"u1"},
				ExemptGroups:      []string{"g1"},
				ExemptNamespaces:  []string{"kube-system", "n1", "ng"},
				PlatformUsernames: []string{"p1"},
				PlatformGroups:    []string{"pg1"},
				SelfUsername:      "me",

				MaxConcurrentEvaluations: 4,
				// No flag: the file's.
				CrossNamespace: rules.CrossNamespaceConfig{MaxLevel: rules.LevelBaseline},
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("POD_NAMESPACE", tc.podNamespace)
			got, err := resolveAdmissionConfig(t, tc.file, tc.flags...)
			if err != nil {
				t.Fatal(err)
			}
			// kube-controller-manager's deleters are not configurable.
			tc.want.SystemDeleters = webhook.DefaultSystemDeleters
			if got, want := normalize(got), normalize(tc.want); !reflect.DeepEqual(got, want) {
				t.Errorf("config:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// Bad values are errors that name where they are, whether they come from the
// file or a flag; a bad file is an error even when a flag would override the
// bad field.
func TestConfigFileAndFlagErrors(t *testing.T) {
	cases := []struct {
		name  string
		file  string
		flags []string
		want  []string
	}{
		{"bad level in the file", "apiVersion: netguard.io/v1alpha1\nkind: NetguardConfiguration\ndefaults:\n  audit: strict\n", nil,
			[]string{`--config "`, `defaults.audit: Invalid value: "strict": unknown level "strict"`}},
		{"bad level in the file, overridden by a flag", "apiVersion: netguard.io/v1alpha1\nkind: NetguardConfiguration\ndefaults:\n  audit: strict\n", []string{"--default-audit=baseline"},
			[]string{`--config "`, `defaults.audit: Invalid value: "strict": unknown level "strict"`}},
		{"bad version in the file", "apiVersion: netguard.io/v1alpha1\nkind: NetguardConfiguration\ndefaults:\n  warn: baseline:1.0\n", nil,
			[]string{`--config "`, `defaults.warn: Invalid value: "baseline:1.0": unknown version "1.0"`}},
		{"wrong kind", "apiVersion: netguard.io/v1alpha1\nkind: AdmissionConfiguration\n", nil,
			[]string{"--config", `kind "AdmissionConfiguration"`, "want apiVersion netguard.io/v1alpha1, kind NetguardConfiguration"}},
		{"misspelled field", "apiVersion: netguard.io/v1alpha1\nkind: NetguardConfiguration\nplatformIdentity: {}\n", nil,
			[]string{"--config", `unknown field "platformIdentity"`}},
		{"empty file", "\n", nil, []string{"--config", "file is empty"}},
		{"empty level flag", "", []string{"--default-enforce="},
			[]string{"--default-enforce", `unknown level ""`}},
		{"negative bound in the file", "apiVersion: netguard.io/v1alpha1\nkind: NetguardConfiguration\nadmission:\n  maxConcurrentEvaluations: -1\n", nil,
			[]string{`--config "`, "admission.maxConcurrentEvaluations: Invalid value: -1: must not be negative (0 means 32)"}},
		{"two bad fields in the file, on one line", "apiVersion: netguard.io/v1alpha1\nkind: NetguardConfiguration\ndefaults:\n  enforce: strict\naudit:\n  interval: 0s\n", nil,
			[]string{`--config "`, `defaults.enforce: Invalid value: "strict": unknown level "strict"; use privileged, baseline, restricted or managed, optionally with :v<major>.<minor>; audit.interval: Invalid value: "0s": must be greater than 0`}},
		{"zero bound flag", "", []string{"--max-concurrent-evaluations=0"},
			[]string{"--max-concurrent-evaluations 0: must be at least 1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolveAdmissionConfig(t, tc.file, tc.flags...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// Through the command itself, a bad policy flag is one line on stderr that
// names the flag.
func TestServePolicyFlagErrorsNameTheFlag(t *testing.T) {
	certDir := writeTestCerts(t)
	for _, args := range [][]string{
		{"--default-enforce="},
		{"--default-warn=Baseline"},
		{"--default-audit=restricted:latest:x"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(append([]string{"serve", "--cert-dir", certDir}, args...), ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
			msg := errOut.String()
			flag, _, _ := strings.Cut(args[0], "=")
			if code != 2 || strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "netguard: ") || !strings.Contains(msg, flag) {
				t.Errorf("exit %d, stderr %q; want exit 2 and one line naming %s", code, msg, flag)
			}
		})
	}
}

// crossNamespace: unset is on at every level; enabled: false turns consent
// off; an unknown maxLevel is an error naming the field.
func TestCrossNamespaceConfiguration(t *testing.T) {
	dir := t.TempDir()
	load := func(body string) (*configv1alpha1.NetguardConfiguration, error) {
		path := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(path, []byte("apiVersion: netguard.io/v1alpha1\nkind: NetguardConfiguration\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
		return loadServeConfig(path)
	}
	c, err := load("")
	if err != nil {
		t.Fatal(err)
	}
	if g := crossNamespaceGrant(c.CrossNamespace); g.Disabled || g.MaxLevel != "" {
		t.Errorf("default grant %+v, want enabled at every level", g)
	}
	c, err = load("crossNamespace: {enabled: false}\n")
	if err != nil {
		t.Fatal(err)
	}
	if g := crossNamespaceGrant(c.CrossNamespace); !g.Disabled {
		t.Errorf("enabled: false gave %+v", g)
	}
	if _, err := load("crossNamespace: {maxLevel: strict}\n"); err == nil || !strings.Contains(err.Error(), `crossNamespace.maxLevel: Unsupported value: "strict": supported values: "privileged", "baseline", "restricted", "managed"`) {
		t.Errorf("bad maxLevel: %v", err)
	}
}

// The file format repeats the engine's level names and version syntax so
// that it imports no engine code; they must not drift apart.
func TestConfigLevelsMatchRules(t *testing.T) {
	var want []string
	for _, l := range rules.Levels() {
		want = append(want, string(l))
	}
	if got := configv1alpha1.Levels(); !reflect.DeepEqual(got, want) {
		t.Errorf("api/config/v1alpha1 levels %q, rules levels %q", got, want)
	}
	for _, v := range []string{"latest", "v1.0", "v1.1", "v2.10", "v999999.999999", "v1000000.0", "v0.9", "v1.01", "1.0", "v1", "V1.0", "v1.0.0", "", "Latest", " v1.0"} {
		_, _, fileErr := configv1alpha1.ParseLevelVersion("baseline:" + v)
		_, rulesErr := rules.ParseVersion(v)
		if (fileErr == nil) != (rulesErr == nil) {
			t.Errorf("version %q: api/config/v1alpha1 says %v, rules says %v", v, fileErr, rulesErr)
		}
	}
}
