package rules

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// FuzzParseDependsOn: the parser never panics; what it accepts is valid,
// sorted, free of duplicates and survives a round trip through its canonical
// form; what it rejects comes with short errors on the annotation's path.
func FuzzParseDependsOn(f *testing.F) {
	for _, s := range []string{
		"", "backend:8080", "backend:80a", "dns:53/udp dns:53/TCP", "a:10000-30000,b:http/sctp\n c:1-1",
		"a:65535 a:65536 a:0 a:-1 a:1-", ":80", "a:", "a", "a:80/", "a:80/icmp", "A:80",
		"a:80\x00", "a:80 \x1b[0m", "a:80\u200b", "\xff", "a:30-20", "x:" + strings.Repeat("9", 100),
		"web:http web:http", "a:b:c", "a:80/tcp/udp", "a::80", "a:08080", "a:00080",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		deps, warnings, errs := ParseDependsOn(value, dependsOnPath)
		if len(errs) > 0 {
			if deps != nil {
				t.Fatalf("dependencies returned with errors: %v", deps)
			}
			for _, e := range errs {
				if e.Field != dependsOnPath.String() || (e.Detail == "" && e.Type != field.ErrorTypeTooLong && e.Type != field.ErrorTypeTooMany) {
					t.Fatalf("error %#v", e)
				}
				if len(e.Error()) > 600 {
					t.Fatalf("error message of %d bytes: %s", len(e.Error()), e.Error())
				}
			}
			return
		}
		for _, w := range warnings {
			if !strings.HasPrefix(w, AnnotationDependsOn+": ") {
				t.Fatalf("warning %q", w)
			}
		}
		seen := map[string]bool{}
		var canonical []string
		for i, d := range deps {
			if len(validation.IsDNS1123Label(d.Component)) > 0 {
				t.Fatalf("component %q", d.Component)
			}
			switch d.Protocol {
			case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
			default:
				t.Fatalf("protocol %q", d.Protocol)
			}
			if d.Port.Type == intstr.Int {
				if d.Port.IntVal < 1 || d.Port.IntVal > 65535 || (d.EndPort != 0 && (d.EndPort <= d.Port.IntVal || d.EndPort > 65535)) {
					t.Fatalf("port %v-%d", d.Port.IntVal, d.EndPort)
				}
			} else if len(validation.IsValidPortName(d.Port.StrVal)) > 0 || d.EndPort != 0 {
				t.Fatalf("port %q end %d", d.Port.StrVal, d.EndPort)
			}
			if seen[d.String()] {
				t.Fatalf("duplicate %s", d)
			}
			seen[d.String()] = true
			if i > 0 && !deps[i-1].less(d) {
				t.Fatalf("not sorted: %s before %s", deps[i-1], d)
			}
			canonical = append(canonical, d.String())
		}
		again, w2, errs := ParseDependsOn(strings.Join(canonical, "\n"), dependsOnPath)
		if len(errs) > 0 || len(w2) > 0 || !reflect.DeepEqual(again, deps) {
			t.Fatalf("canonical form %q parsed to %v, %v, %v", canonical, again, w2, errs)
		}
	})
}
