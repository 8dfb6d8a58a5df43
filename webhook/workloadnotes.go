package webhook

import (
	"context"
	"fmt"
	"maps"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
)

// Warnings about a workload's netguard.io annotations are given when the
// user writes them: on create, and on an update that adds, changes or
// removes one. An update that leaves them alone (a new image, a restart, a
// finalizer) says nothing about them, so that an unrelated change is not
// met with a warning about something nobody touched.

// netguardAnnotationsWritten reports whether the request writes the
// workload's netguard.io annotations (netguard's own record aside). An
// update whose old object cannot be read counts as writing them: it is then
// judged in full, as a create is.
func netguardAnnotationsWritten(req admission.Request, o decodedWorkload) bool {
	if req.Operation != admissionv1.Update {
		return true
	}
	old, err := decodeWorkload(req, true)
	if err != nil {
		return true
	}
	return !maps.Equal(userNetguardAnnotations(old.GetAnnotations()), userNetguardAnnotations(o.GetAnnotations()))
}

// userNetguardAnnotations are the netguard.io/ annotations a user writes.
func userNetguardAnnotations(a map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		if strings.HasPrefix(k, rules.KeyPrefix) && k != rules.AnnotationGenerated {
			out[k] = v
		}
	}
	return out
}

// dependencyWarnings warns about dependencies on components that no
// workload of the namespace declares, read from the informer cache (workload
// metadata). It costs one cached list per workload kind, and runs only when
// the annotations are written. A workload written a moment ago (kubectl
// apply of api, then web) may not be cached yet, so a warning is confirmed
// with a metadata list from the API server before it is given: a false
// warning would teach people to ignore the true ones. When neither can be
// read it says nothing: warnings must not cost an admission.
func (m *workloadMutator) dependencyWarnings(ctx context.Context, w rules.Workload) []string {
	ann, _, errs := rules.ParseAnnotations(w.Name, w.Annotations, field.NewPath("metadata"))
	if len(errs) > 0 || len(ann.DependsOn) == 0 {
		return nil
	}
	warnings := undeclaredIn(ctx, m.s.injector.cache, w, ann)
	if len(warnings) == 0 || m.s.apiReader == nil {
		return warnings
	}
	return undeclaredIn(ctx, m.s.apiReader, w, ann)
}

// undeclaredIn is dependencyWarnings against one reader.
func undeclaredIn(ctx context.Context, r client.Reader, w rules.Workload, ann rules.Annotations) []string {
	declared := map[string]bool{ann.Component: true}
	unannotated := map[string]string{}
	for _, kind := range workloadKinds {
		list := workloadMetadataList(kind)
		if err := r.List(ctx, list, client.InNamespace(w.Namespace)); err != nil {
			logf.FromContext(ctx).V(1).Info("cannot list workloads for dependency warnings", "kind", kind, "error", err.Error())
			return nil
		}
		for i := range list.Items {
			o := &list.Items[i]
			if kind == w.Kind && o.Name == w.Name {
				continue // the request's version counts, not the cached one
			}
			if !rules.IsAnnotated(o.Annotations) {
				if _, ok := unannotated[o.Name]; !ok {
					unannotated[o.Name] = kind + "/" + o.Name
				}
				continue
			}
			if c, ok := o.Annotations[rules.AnnotationComponent]; ok {
				declared[strings.TrimSpace(c)] = true
			} else {
				declared[o.Name] = true
			}
		}
	}
	locals := &netguardv1alpha1.LocalNetworkConfigList{}
	if err := r.List(ctx, locals, client.InNamespace(w.Namespace)); err == nil {
		for _, l := range locals.Items {
			for c := range l.Spec.Components {
				declared[c] = true
			}
		}
	}
	return rules.UndeclaredDependencies(w.Namespace, ann.DependsOn,
		func(c string) bool { return declared[c] },
		func(name string) string { return unannotated[name] })
}

// keptOnMissingProfile admits an update that leaves the netguard.io
// annotations alone although a profile they list is gone (deleted by the
// platform team, or not yet restored): an emergency patch or a restart must
// not be blocked by a profile the workload's owner does not own. Nothing is
// generated, so the workload's existing policies stay exactly as they are;
// they neither widen nor vanish. The pod template keeps its component label.
func keptOnMissingProfile(w rules.Workload, obj workloadDoc, kind rules.WorkloadKind, component string, errs field.ErrorList) admission.Response {
	resp := admission.Allowed("")
	if component != "" {
		ops, err := componentLabelPatch(obj, kind, component)
		if err == nil {
			resp.Patches = ops
		}
	}
	for _, e := range errs {
		resp.Warnings = append(resp.Warnings, fmt.Sprintf("netguard: %s %q: %s; the update is admitted and the workload's NetworkPolicies are kept as they were until the annotation or the profile is fixed", w.Kind, w.Name, e.Error()))
	}
	return resp
}
