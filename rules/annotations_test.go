package rules

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var dependsOnPath = field.NewPath("metadata", "annotations").Key(AnnotationDependsOn)

func dep(component string, port intstr.IntOrString, end int32, proto corev1.Protocol) Dependency {
	return Dependency{Component: component, Port: port, EndPort: end, Protocol: proto}
}

func TestParseDependsOn(t *testing.T) {
	tcp, udp, sctp := corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP
	n := intstr.FromInt32
	s := intstr.FromString
	tests := []struct {
		name     string
		value    string
		want     []Dependency
		warnings []string
		errs     field.ErrorList
	}{
		{name: "empty", value: ""},
		{name: "only separators", value: " ,\n\t, "},
		{name: "single", value: "backend:8080", want: []Dependency{dep("backend", n(8080), 0, tcp)}},
		{
			name:  "separators, multi-line, protocols, sorted",
			value: "db:5432,\n  dns:53/udp dns:53/Tcp\r\n\tsctp-peer:3868/SCTP , backend:http",
			want: []Dependency{
				dep("backend", s("http"), 0, tcp),
				dep("db", n(5432), 0, tcp),
				dep("dns", n(53), 0, tcp),
				dep("dns", n(53), 0, udp),
				dep("sctp-peer", n(3868), 0, sctp),
			},
		},
		{name: "range", value: "instance-manager:10000-30000", want: []Dependency{dep("instance-manager", n(10000), 30000, tcp)}},
		{name: "range of one port is a port", value: "a:80-80", want: []Dependency{dep("a", n(80), 0, tcp)}},
		{name: "extremes", value: "a:1 a:65535 a:1-65535/UDP", want: []Dependency{dep("a", n(1), 0, tcp), dep("a", n(65535), 0, tcp), dep("a", n(1), 65535, udp)}},
		{name: "self", value: "web:8080", want: []Dependency{dep("web", n(8080), 0, tcp)}},
		{
			name:     "duplicates after canonical form",
			value:    "backend:80 backend:80/TCP, backend:80/tcp",
			want:     []Dependency{dep("backend", n(80), 0, tcp)},
			warnings: []string{`netguard.io/depends-on: "backend:80" is listed more than once`, `netguard.io/depends-on: "backend:80" is listed more than once`},
		},
		{
			name:  "port with letters",
			value: "backend:80a",
			errs:  field.ErrorList{field.Invalid(dependsOnPath, "backend:80a", portHelp)},
		},
		{name: "port zero", value: "a:0", errs: field.ErrorList{field.Invalid(dependsOnPath, "a:0", portHelp)}},
		{name: "port too big", value: "a:65536", errs: field.ErrorList{field.Invalid(dependsOnPath, "a:65536", portHelp)}},
		{name: "port with sign", value: "a:+80", errs: field.ErrorList{field.Invalid(dependsOnPath, "a:+80", portHelp)}},
		{name: "negative port", value: "a:-1", errs: field.ErrorList{field.Invalid(dependsOnPath, "a:-1", portHelp)}},
		{name: "long port name", value: "a:abcdefghijklmnop", errs: field.ErrorList{field.Invalid(dependsOnPath, "a:abcdefghijklmnop", portHelp)}},
		{name: "upper-case port name", value: "a:HTTP", errs: field.ErrorList{field.Invalid(dependsOnPath, "a:HTTP", portHelp)}},
		{
			name:  "missing colon",
			value: "backend",
			errs:  field.ErrorList{field.Invalid(dependsOnPath, "backend", "must be COMPONENT:PORT[/PROTOCOL], e.g. backend:8080 or dns:53/UDP")},
		},
		{
			name:  "missing component",
			value: ":80",
			errs:  field.ErrorList{field.Invalid(dependsOnPath, ":80", "component name is missing; must be COMPONENT:PORT[/PROTOCOL], e.g. backend:8080 or dns:53/UDP")},
		},
		{
			name:  "missing port",
			value: "a:",
			errs:  field.ErrorList{field.Invalid(dependsOnPath, "a:", "port is missing; must be COMPONENT:PORT[/PROTOCOL], e.g. backend:8080 or dns:53/UDP")},
		},
		{
			name:  "bad component",
			value: "Backend:80",
			errs:  field.ErrorList{field.Invalid(dependsOnPath, "Backend:80", `component "Backend" must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit`)},
		},
		{
			name:  "component too long",
			value: strings.Repeat("a", 64) + ":80",
			errs:  field.ErrorList{field.Invalid(dependsOnPath, strings.Repeat("a", 64)+":80", `component "`+strings.Repeat("a", 64)+`" must be at most 63 characters`)},
		},
		{
			name:  "bad protocol",
			value: "a:80/icmp",
			errs:  field.ErrorList{field.Invalid(dependsOnPath, "a:80/icmp", `protocol "icmp" must be TCP, UDP or SCTP`)},
		},
		{
			name:  "empty protocol",
			value: "a:80/",
			errs:  field.ErrorList{field.Invalid(dependsOnPath, "a:80/", `protocol is missing after "/"; must be TCP, UDP or SCTP`)},
		},
		{
			name:  "reversed range",
			value: "a:30-20",
			errs:  field.ErrorList{field.Invalid(dependsOnPath, "a:30-20", `port range "30-20" ends before it starts; write LOW-HIGH`)},
		},
		{
			name:  "open range",
			value: "a:1-",
			errs:  field.ErrorList{field.Invalid(dependsOnPath, "a:1-", `port range "1-" must be LOW-HIGH with both ends 1-65535`)},
		},
		{
			name:  "range past 65535",
			value: "a:1-70000",
			errs:  field.ErrorList{field.Invalid(dependsOnPath, "a:1-70000", `port range "1-70000" must be LOW-HIGH with both ends 1-65535`)},
		},
		{
			name:  "every bad entry is reported, good ones are not returned",
			value: "ok:80 bad:0 worse",
			errs: field.ErrorList{
				field.Invalid(dependsOnPath, "bad:0", portHelp),
				field.Invalid(dependsOnPath, "worse", "must be COMPONENT:PORT[/PROTOCOL], e.g. backend:8080 or dns:53/UDP"),
			},
		},
		{
			name:  "control character",
			value: "a:80\x00b:81",
			errs:  field.ErrorList{field.Invalid(dependsOnPath, "a:80\x00b:81", "control character U+0000 at byte 4 is not allowed; separate entries with commas, spaces or newlines")},
		},
		{
			name:  "escape sequence",
			value: "a:80 \x1b[31mb:81",
			errs:  field.ErrorList{field.Invalid(dependsOnPath, "a:80 \x1b[31mb:81", "control character U+001B at byte 5 is not allowed; separate entries with commas, spaces or newlines")},
		},
		{
			name:  "invalid UTF-8",
			value: "a:80 \xff",
			errs:  field.ErrorList{field.Invalid(dependsOnPath, "a:80 \xff", "must be valid UTF-8")},
		},
		{
			name:  "too long",
			value: strings.Repeat("a:80 ", maxAnnotationValueLength/5+1),
			errs:  field.ErrorList{field.TooLong(dependsOnPath, "", maxAnnotationValueLength)},
		},
		{
			name:  "too many entries",
			value: strings.Repeat("a:80 ", maxDependsOnEntries+1),
			errs:  field.ErrorList{field.TooMany(dependsOnPath, maxDependsOnEntries+1, maxDependsOnEntries)},
		},
		{
			name:  "long token is shortened in the message",
			value: "a:" + strings.Repeat("9", 200),
			errs:  field.ErrorList{field.Invalid(dependsOnPath, "a:"+strings.Repeat("9", maxShownToken-2)+"...", portHelp)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, warnings, errs := ParseDependsOn(tt.value, dependsOnPath)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("dependencies:\n got %v\nwant %v", got, tt.want)
			}
			if !reflect.DeepEqual(warnings, tt.warnings) {
				t.Errorf("warnings:\n got %q\nwant %q", warnings, tt.warnings)
			}
			if !reflect.DeepEqual(errs, tt.errs) {
				t.Errorf("errors:\n got %v\nwant %v", errs, tt.errs)
			}
		})
	}
}

// The message a user sees for the example in the issue.
func TestParseDependsOnMessage(t *testing.T) {
	_, _, errs := ParseDependsOn("backend:80a", dependsOnPath)
	want := `metadata.annotations[netguard.io/depends-on]: Invalid value: "backend:80a": port must be 1-65535, a range LOW-HIGH, or a port name (up to 15 lowercase letters, digits and '-', starting with a letter)`
	if len(errs) != 1 || errs[0].Error() != want {
		t.Fatalf("got %v\nwant %s", errs, want)
	}
}

func TestDependencyString(t *testing.T) {
	for in, want := range map[string]string{
		"a:80":              "a:80",
		"a:80/tcp":          "a:80",
		"a:53/udp":          "a:53/UDP",
		"a:http/sctp":       "a:http/SCTP",
		"a:10000-30000":     "a:10000-30000",
		"a:10000-30000/Udp": "a:10000-30000/UDP",
	} {
		deps, _, errs := ParseDependsOn(in, dependsOnPath)
		if len(errs) > 0 || len(deps) != 1 {
			t.Fatalf("%q: %v", in, errs)
		}
		if got := deps[0].String(); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
		// The canonical form parses to the same dependency.
		again, _, _ := ParseDependsOn(deps[0].String(), dependsOnPath)
		if !reflect.DeepEqual(again, deps) {
			t.Errorf("%q: round trip gave %v", in, again)
		}
	}
}

func TestParseProfiles(t *testing.T) {
	path := field.NewPath("metadata", "annotations").Key(AnnotationProfiles)
	got, warnings, errs := ParseProfiles("prometheus-scrape, dns\nexternal.payments-api dns", path)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if want := []string{"dns", "external.payments-api", "prometheus-scrape"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if want := []string{`netguard.io/profiles: "dns" is listed more than once`}; !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings %q, want %q", warnings, want)
	}
	_, _, errs = ParseProfiles("good Bad_Name", path)
	if len(errs) != 1 || errs[0].Field != path.String() || errs[0].BadValue != "Bad_Name" || !strings.HasPrefix(errs[0].Detail, "must be a NetworkProfile name: ") {
		t.Errorf("got %v", errs)
	}
}

func TestParseAnnotations(t *testing.T) {
	meta := field.NewPath("metadata")
	compPath := meta.Child("annotations").Key(AnnotationComponent)
	tests := []struct {
		name     string
		workload string
		ann      map[string]string
		want     Annotations
		errs     field.ErrorList
	}{
		{name: "component defaults to the workload name", workload: "web", ann: map[string]string{AnnotationDependsOn: "api:80"},
			want: Annotations{Component: "web", DependsOn: []Dependency{dep("api", intstr.FromInt32(80), 0, corev1.ProtocolTCP)}}},
		{name: "explicit component", workload: "web-v2", ann: map[string]string{AnnotationComponent: " web "}, want: Annotations{Component: "web"}},
		{name: "empty component", workload: "web", ann: map[string]string{AnnotationComponent: ""},
			errs: field.ErrorList{field.Required(compPath, "must name the component (a DNS-1123 label); remove the annotation to use the workload's name")}},
		{name: "bad component", workload: "web", ann: map[string]string{AnnotationComponent: "web.v2"},
			errs: field.ErrorList{field.Invalid(compPath, "web.v2", "must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit")}},
		{name: "component with a control character", workload: "web", ann: map[string]string{AnnotationComponent: "web\x07"},
			errs: field.ErrorList{field.Invalid(compPath, "web\x07", "control character U+0007 at byte 3 is not allowed; separate entries with commas, spaces or newlines")}},
		{name: "workload name that is no label", workload: "web.v2", ann: map[string]string{AnnotationProfiles: "dns"},
			want: Annotations{Profiles: []string{"dns"}},
			errs: field.ErrorList{field.Invalid(meta.Child("name"), "web.v2", "cannot be the component name: it must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit; set the netguard.io/component annotation")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, errs := ParseAnnotations(tt.workload, tt.ann, meta)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if !reflect.DeepEqual(errs, tt.errs) {
				t.Errorf("errors:\n got %v\nwant %v", errs, tt.errs)
			}
		})
	}
}

func TestIsAnnotated(t *testing.T) {
	for _, k := range []string{AnnotationComponent, AnnotationDependsOn, AnnotationProfiles} {
		if !IsAnnotated(map[string]string{k: ""}) {
			t.Errorf("%s: want annotated", k)
		}
	}
	if IsAnnotated(nil) || IsAnnotated(map[string]string{"netguard.io/other": "x"}) {
		t.Error("want not annotated")
	}
}
