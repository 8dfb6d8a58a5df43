package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/netguard/netguard/rules"
)

// Workload admission is fail-open: when netguard cannot do its work the
// workload is admitted with a warning and the controller backfills its
// policies. Only a workload whose annotations are wrong is denied, and only
// where the namespace's enforce level is not privileged.

// workloadDoc is what netguard reads of a workload (rules.WorkloadKinds, and
// ReplicaSets for their label) in a request: its metadata and the labels of
// the pod metadata it makes, at the kind's rules.WorkloadKind.PodMetadata
// (a pod template, a CronJob's job template's pod template, or a Pod's own
// metadata). The pointers tell a missing field from an empty one, for the
// patch. Decoding only this, once, instead of the whole typed workload and
// then the patch's fields again, is most of what the workload webhooks
// spend on decoding (BENCHMARKS.md, section 5); the API server has
// validated the rest.
type workloadDoc struct {
	APIVersion string             `json:"apiVersion,omitempty"`
	Kind       string             `json:"kind,omitempty"`
	Metadata   *metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec       *workloadSpec      `json:"spec,omitempty"`
}

type workloadSpec struct {
	Template    *podTemplateDoc `json:"template,omitempty"`
	JobTemplate *jobTemplateDoc `json:"jobTemplate,omitempty"`
}

type jobTemplateDoc struct {
	Spec *workloadSpec `json:"spec,omitempty"`
}

type podTemplateDoc struct {
	Metadata *podTemplateMetadata `json:"metadata"`
}

type podTemplateMetadata struct {
	Labels map[string]string `json:"labels"`
}

// podLabels returns the labels of the pods the object makes (k's
// PodMetadata), and how many elements of that path, with "labels" as the
// last, the object has: all of them when the labels exist, fewer when
// netguard's patch must add a parent.
func (d *workloadDoc) podLabels(k rules.WorkloadKind) (map[string]string, int) {
	if k.IsPod() {
		switch {
		case d.Metadata == nil:
			return nil, 0
		case d.Metadata.Labels == nil:
			return nil, 1
		}
		return d.Metadata.Labels, 2
	}
	n := 0
	spec := d.Spec
	if spec == nil {
		return nil, n
	}
	n++
	if len(k.PodMetadata) == 5 { // spec.jobTemplate.spec.template.metadata
		if spec.JobTemplate == nil {
			return nil, n
		}
		n++
		if spec = spec.JobTemplate.Spec; spec == nil {
			return nil, n
		}
		n++
	}
	if spec.Template == nil {
		return nil, n
	}
	n++
	if spec.Template.Metadata == nil {
		return nil, n
	}
	n++
	if spec.Template.Metadata.Labels == nil {
		return nil, n
	}
	return spec.Template.Metadata.Labels, n + 1
}

// decodedWorkload is a workload decoded from a request.
type decodedWorkload struct {
	*metav1.PartialObjectMetadata
	doc  workloadDoc
	kind rules.WorkloadKind
}

// decodeWorkload decodes the request's object (or oldObject) as its kind.
func decodeWorkload(req admission.Request, old bool) (decodedWorkload, error) {
	k, ok := rules.LookupLabelledKind(req.Kind.Group, req.Kind.Kind)
	if !ok {
		return decodedWorkload{}, fmt.Errorf("this webhook handles apps/v1 Deployments, StatefulSets, DaemonSets and ReplicaSets, batch/v1 Jobs and CronJobs, and v1 Pods, not %s", req.Kind.String())
	}
	ext, name := req.Object, "object"
	if old {
		ext, name = req.OldObject, "oldObject"
	}
	d := decodedWorkload{kind: k}
	if len(ext.Raw) == 0 {
		return decodedWorkload{}, fmt.Errorf("request.%s is missing", name)
	}
	// Case-sensitive, as the API server decodes.
	if err := utiljson.Unmarshal(ext.Raw, &d.doc); err != nil {
		return decodedWorkload{}, fmt.Errorf("request.%s is not a %s: %v", name, req.Kind.Kind, err)
	}
	if gvk := schema.FromAPIVersionAndKind(d.doc.APIVersion, d.doc.Kind); !gvk.Empty() && (gvk.Group != k.Group || gvk.Kind != req.Kind.Kind) {
		return decodedWorkload{}, fmt.Errorf("request.%s is %s, want %s", name, gvk.String(), strings.TrimSpace(k.Group+" "+k.Kind))
	}
	d.PartialObjectMetadata = &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: d.doc.APIVersion, Kind: d.doc.Kind}}
	if d.doc.Metadata != nil {
		d.ObjectMeta = *d.doc.Metadata
	}
	if d.GetNamespace() == "" {
		d.SetNamespace(req.Namespace)
	}
	if d.GetNamespace() != req.Namespace {
		return decodedWorkload{}, fmt.Errorf("request.%s.metadata.namespace %q is not request.namespace %q", name, d.GetNamespace(), req.Namespace)
	}
	return d, nil
}

// injects reports whether netguard injects into the object: it is of a
// kind netguard injects into (not a ReplicaSet), and not a Pod or Job that
// its controller made from a template netguard handles (rules.TemplateOwner).
func (d decodedWorkload) injects() bool {
	if d.kind.LabelOnly {
		return false
	}
	_, owned := rules.TemplateOwner(d.kind.Kind, d.GetOwnerReferences())
	return !owned
}

func hasNetguardState(annotations map[string]string) bool {
	if rules.IsAnnotated(annotations) {
		return true
	}
	_, ok := annotations[rules.AnnotationGenerated]
	return ok
}

// workloadMutator patches the pod template's component label and records what
// is generated. It has no side effects.
type workloadMutator struct {
	s *Server
}

func (m *workloadMutator) Handle(ctx context.Context, req admission.Request) admission.Response {
	resp, d := m.handle(ctx, req)
	admissionDecisions.WithLabelValues(resourceOf(req), operationLabel(req.Operation), d.decision, d.mode, d.level).Inc()
	return resp
}

// resourceOf is the resource label of a workload decision. Labels come from
// small fixed sets: a request that names anything else, which only a client
// calling netguard directly can send, is counted as "unknown".
func resourceOf(req admission.Request) string {
	if k, ok := rules.LookupLabelledKind(req.Kind.Group, req.Kind.Kind); ok {
		return k.Resource
	}
	return "unknown"
}

func (m *workloadMutator) handle(ctx context.Context, req admission.Request) (admission.Response, decision) {
	log := logf.FromContext(ctx)
	if err := checkRequest(req); err != nil {
		return admission.Errored(http.StatusBadRequest, err), decision{"error", "inject", "none"}
	}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed(""), decision{"allow", "inject", "none"}
	}
	o, err := decodeWorkload(req, false)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err), decision{"error", "inject", "none"}
	}
	if m.s.cfg.namespaceExempt(req.Namespace) {
		return admission.Allowed(""), decision{"allow", "exempt", "none"}
	}
	if beingDeleted(o) {
		return admission.Allowed(""), decision{"allow", "inject", "none"}
	}
	if !o.injects() {
		// A ReplicaSet, or a Pod or Job its controller made from a
		// template netguard handled: only its component label is checked.
		return m.checkLabel(ctx, req, o)
	}
	written := netguardAnnotationsWritten(req, o)
	var notes []string // warnings about what the user wrote
	if written {
		notes = rules.UnknownWorkloadAnnotations(o.GetAnnotations(), field.NewPath("metadata"))
	}
	if !hasNetguardState(o.GetAnnotations()) {
		resp, d := m.checkLabel(ctx, req, o)
		return resp.WithWarnings(prefixed(notes)...), d
	}
	if !rules.IsAnnotated(o.GetAnnotations()) {
		// The annotations were removed: drop the record; the validating
		// webhook and the controller delete the policies.
		return patched(o.doc, o.kind, nil, nil), decision{"allow", "inject", "none"}
	}
	if !m.s.synced.Load() {
		return admission.Allowed("").WithWarnings(notSyncedWarning), decision{"allow", "inject", "none"}
	}
	w := toRulesWorkload(o.kind.Kind, o)
	gen, ferrs, err := m.s.injector.generate(ctx, w)
	if err != nil {
		log.Info("cannot generate policies; admitting and leaving it to the controller", "error", err.Error())
		return admission.Allowed("").WithWarnings("netguard: " + err.Error() + "; policies will be generated when netguard can read them"), decision{"allow", "inject", "none"}
	}
	if len(ferrs) == 0 {
		if ferr := m.s.checkOwnership(ctx, req, w, gen.Component); ferr != nil {
			if m.s.isSelf(req.UserInfo.Username) {
				// The controller removing what it had injected into a
				// workload that does not own its component.
				return admission.Allowed(""), decision{"allow", "inject", "none"}
			}
			ferrs = field.ErrorList{ferr}
		}
	}
	if len(ferrs) > 0 {
		if _, only := rules.MissingProfiles(ferrs); only && !written {
			log.Info("admitted an update that leaves the annotations alone although a NetworkProfile they list is missing", "fields", errorFields(ferrs))
			return keptOnMissingProfile(w, o.doc, o.kind, gen.Component, ferrs).WithWarnings(prefixed(notes)...), decision{"allow", "inject", "none"}
		}
		level := m.s.enforceLevel(ctx, req.Namespace)
		if level != rules.LevelPrivileged {
			// The field paths only: the messages quote annotation values,
			// which the user sees in the response, not the log.
			log.Info("denied workload with invalid netguard annotations", "fields", errorFields(ferrs))
			return invalid(req, o.GetName(), ferrs).WithWarnings(prefixed(notes)...), decision{"deny", "inject", string(level)}
		}
		warnings := prefixed(notes)
		for _, e := range ferrs {
			warnings = append(warnings, "netguard: "+e.Error()+"; no NetworkPolicies were generated")
		}
		return admission.Allowed("").WithWarnings(warnings...), decision{"allow", "inject", string(level)}
	}
	if !written {
		// Nothing the user wrote changes what netguard generates: no new
		// judgement, no warnings about an unrelated patch.
		return patched(o.doc, o.kind, &gen.Generated, nil), decision{"allow", "inject", "none"}
	}
	verdict, err := m.s.judgeGenerated(ctx, w, gen)
	if err != nil {
		log.Info("cannot read the namespace's levels to judge the generated policies; admitting, the controller judges them again", "error", err.Error())
	}
	if len(verdict.denied) > 0 {
		log.Info("denied workload whose generated policies violate the namespace's level", "level", verdict.enforce.String(), "rules", ruleIDs(verdict.denied))
		return verdict.denial(req, o.GetName()), decision{"deny", "inject", string(verdict.enforce.Level)}
	}
	// Dependency warnings come from the validating webhook, which reads
	// for them while it writes the policies (workloadApplier).
	notes = append(notes, gen.Warnings...)
	resp := patched(o.doc, o.kind, &gen.Generated, notes)
	resp.Warnings = append(resp.Warnings, verdict.warnings...)
	if len(verdict.auditAnnotations) > 0 {
		resp.AuditAnnotations = verdict.auditAnnotations
	}
	return resp, decision{"allow", "inject", "none"}
}

const notSyncedWarning = "netguard is starting and its caches are not synced: NetworkPolicies for this workload will be generated by the controller shortly"

// patched sets netguard's record annotation and the pod template's component
// label from gen, or with gen nil removes the record. The patch names only
// those two fields, so that nothing else changes: re-encoding the object from
// netguard's API types would drop fields the API server knows and netguard
// does not.
func patched(obj workloadDoc, kind rules.WorkloadKind, gen *rules.Generated, warnings []string) admission.Response {
	ops, err := netguardPatch(obj, kind, gen)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	resp := admission.Allowed("")
	resp.Patches = ops
	for _, w := range warnings {
		resp.Warnings = append(resp.Warnings, "netguard: "+w)
	}
	return resp
}

// netguardPatch is the JSON patch for patched; empty when the object already
// carries both, so that a reinvocation changes nothing.
func netguardPatch(obj workloadDoc, kind rules.WorkloadKind, gen *rules.Generated) ([]jsonpatch.JsonPatchOperation, error) {
	generated := "/metadata/annotations/" + jsonPointerEscape(rules.AnnotationGenerated)
	if gen == nil {
		if obj.Metadata == nil {
			return nil, nil
		}
		if _, ok := obj.Metadata.Annotations[rules.AnnotationGenerated]; !ok {
			return nil, nil
		}
		return []jsonpatch.JsonPatchOperation{jsonpatch.NewOperation("remove", generated, nil)}, nil
	}
	record := gen.Record().String()
	var ops []jsonpatch.JsonPatchOperation
	switch {
	case obj.Metadata == nil:
		ops = append(ops, jsonpatch.NewOperation("add", "/metadata", map[string]any{"annotations": map[string]string{rules.AnnotationGenerated: record}}))
	case obj.Metadata.Annotations == nil:
		ops = append(ops, jsonpatch.NewOperation("add", "/metadata/annotations", map[string]string{rules.AnnotationGenerated: record}))
	case obj.Metadata.Annotations[rules.AnnotationGenerated] != record:
		ops = append(ops, jsonpatch.NewOperation("add", generated, record))
	}
	label, err := componentLabelPatch(obj, kind, gen.Component)
	if err != nil {
		return nil, err
	}
	return append(ops, label...), nil
}

// componentLabelPatch sets the component label of the pods the object makes
// (k's PodMetadata), or is empty when it is already set.
func componentLabelPatch(obj workloadDoc, k rules.WorkloadKind, component string) ([]jsonpatch.JsonPatchOperation, error) {
	labels, have := obj.podLabels(k)
	elems := append(append([]string{}, k.PodMetadata...), "labels")
	switch {
	case have == len(elems):
		if labels[rules.LabelComponent] == component {
			return nil, nil
		}
		return []jsonpatch.JsonPatchOperation{jsonpatch.NewOperation("add", k.PodLabelsPointer()+"/"+jsonPointerEscape(rules.LabelComponent), component)}, nil
	case k.IsPod() && have == 0:
		return nil, errors.New("request.object has no metadata to label")
	case !k.IsPod() && have < len(elems)-2:
		// The pod template itself is missing: the API server would
		// refuse such an object anyway.
		return nil, fmt.Errorf("request.object has no %s to label", strings.Join(k.PodMetadata[:len(k.PodMetadata)-1], "."))
	}
	var value any = map[string]string{rules.LabelComponent: component}
	for i := len(elems) - 1; i > have; i-- {
		value = map[string]any{elems[i]: value}
	}
	return []jsonpatch.JsonPatchOperation{jsonpatch.NewOperation("add", "/"+strings.Join(elems[:have+1], "/"), value)}, nil
}

// podLabelsMergePatch nests value (a labels map, with null to remove a
// label) at k's pod labels, for a merge patch.
func podLabelsMergePatch(k rules.WorkloadKind, value map[string]any) map[string]any {
	elems := append(append([]string{}, k.PodMetadata...), "labels")
	var out any = value
	for i := len(elems) - 1; i >= 0; i-- {
		out = map[string]any{elems[i]: out}
	}
	return out.(map[string]any)
}

// jsonPointerEscape escapes a map key for a JSON pointer (RFC 6901).
func jsonPointerEscape(s string) string {
	return jsonPointerEscaper.Replace(s)
}

// jsonPointerEscaper is built once: building a Replacer allocates its
// tables, a third of the mutating webhook's allocations when it was built
// per call.
var jsonPointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// invalid is a 422 in the API server's words, carrying the parser's messages:
// Deployment.apps "web" is invalid: metadata.annotations[netguard.io/depends-on]: ...
func invalid(req admission.Request, name string, errs field.ErrorList) admission.Response {
	st := apierrors.NewInvalid(schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}, name, errs).ErrStatus
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &st}}
}

// workloadApplier runs after mutation and all other mutating webhooks, on the
// object that will be stored, and makes its generated policies exist before
// the workload does, so that no pod starts without them. See
// docs/injection.md for how ownership is handled on CREATE.
type workloadApplier struct {
	s *Server
}

func (a *workloadApplier) Handle(ctx context.Context, req admission.Request) admission.Response {
	log := logf.FromContext(ctx)
	if err := checkRequest(req); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	o, err := decodeWorkload(req, false)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if a.s.cfg.namespaceExempt(req.Namespace) || beingDeleted(o) || !o.injects() {
		return admission.Allowed("")
	}
	dryRun := req.DryRun != nil && *req.DryRun
	w := toRulesWorkload(o.kind.Kind, o)
	if !rules.IsAnnotated(o.GetAnnotations()) {
		// Before the caches are synced the controller removes the policies
		// once they are.
		if a.s.synced.Load() && req.Operation == admissionv1.Update && !dryRun && w.UID != "" {
			deleted, err := a.s.injector.release(ctx, w)
			if err != nil {
				log.Info("could not delete the policies of a workload whose annotations were removed; the controller retries", "error", err.Error())
			}
			a.s.policyEvents(req, o, nil, deleted)
		}
		return admission.Allowed("")
	}
	if !a.s.synced.Load() {
		return admission.Allowed("").WithWarnings(notSyncedWarning)
	}
	if req.Operation == admissionv1.Create {
		// Not persisted yet: an ownerReference now would let the garbage
		// collector, which looks the owner up at once, delete the policies
		// before the workload exists. The controller adds the reference as
		// soon as it does, and removes the policies if it never does.
		w.UID = ""
	}
	gen, ferrs, err := a.s.injector.generate(ctx, w)
	if err != nil || len(ferrs) > 0 {
		// The mutating webhook already denied or warned.
		return admission.Allowed("")
	}
	// The mutating webhook denied or warned about these too; where it only
	// warned, nothing is written.
	if ferr := a.s.checkOwnership(ctx, req, w, gen.Component); ferr != nil {
		return admission.Allowed("")
	}
	if verdict, err := a.s.judgeGenerated(ctx, w, gen); err == nil && len(verdict.denied) > 0 {
		return admission.Allowed("")
	}
	// Warnings about dependencies nobody declares are given when the user
	// writes the annotations. Reading for them (the cache, then the API
	// server to confirm) runs while the policies are written, so that it
	// adds nothing to the time the API server waits.
	written := netguardAnnotationsWritten(req, o)
	if dryRun {
		var warnings []string
		if written {
			warnings = prefixed(a.s.dependencyWarnings(ctx, w))
		}
		for _, p := range gen.Policies {
			warnings = append(warnings, "netguard (dry run): would generate NetworkPolicy "+p.Name)
		}
		return admission.Allowed("").WithWarnings(warnings...)
	}
	var depWarnings []string
	var reading sync.WaitGroup
	if written {
		reading.Go(func() { depWarnings = prefixed(a.s.dependencyWarnings(ctx, w)) })
	}
	applied, deleted, err := a.s.injector.apply(ctx, w, gen.Generated)
	reading.Wait()
	if err != nil {
		log.Info("could not apply generated policies; admitting and leaving it to the controller", "error", err.Error())
		return admission.Allowed("").WithWarnings(append(depWarnings, "netguard: could not write all NetworkPolicies yet ("+err.Error()+"); the controller will retry")...)
	}
	log.V(1).Info("generated policies", "applied", applied, "deleted", deleted)
	var generated []string
	if req.Operation == admissionv1.Create || previousRecord(req) != gen.Record().String() {
		generated = applied
	}
	a.s.policyEvents(req, o, generated, deleted)
	return admission.Allowed("").WithWarnings(depWarnings...)
}

// previousRecord is the netguard.io/generated record of the workload before
// an update, or "".
func previousRecord(req admission.Request) string {
	if req.Operation != admissionv1.Update {
		return ""
	}
	old, err := decodeWorkload(req, true)
	if err != nil {
		return ""
	}
	return old.GetAnnotations()[rules.AnnotationGenerated]
}

// maxEventListBytes bounds the list of policy names in an event's note
// (events.k8s.io notes hold 1 kB).
const maxEventListBytes = 768

// policyEvents records a Normal event on the workload of req for the
// policies admission generated (PoliciesGenerated) and deleted
// (PoliciesPruned). The caller passes generated only when what is declared
// changed, so that an update that leaves the annotations alone (a scale, a
// rollout) records nothing.
func (s *Server) policyEvents(req admission.Request, o decodedWorkload, generated, deleted []string) {
	if s.recorder == nil || (len(generated) == 0 && len(deleted) == 0) {
		return
	}
	// The webhook has the request, not a stored object: a reference is
	// all an event needs.
	ref := &corev1.ObjectReference{
		APIVersion: o.kind.APIVersion(), Kind: o.kind.Kind,
		Namespace: o.GetNamespace(), Name: o.GetName(), UID: o.GetUID(),
	}
	if ref.Name == "" {
		ref.Name = req.Name
	}
	if len(generated) > 0 {
		s.recorder.Eventf(ref, nil, corev1.EventTypeNormal, "PoliciesGenerated", "Admit", "netguard generated NetworkPolicies %s", boundedList(generated, maxEventListBytes))
	}
	if len(deleted) > 0 {
		s.recorder.Eventf(ref, nil, corev1.EventTypeNormal, "PoliciesPruned", "Admit", "netguard deleted NetworkPolicies no longer declared: %s", boundedList(deleted, maxEventListBytes))
	}
}

// boundedList joins names with ", ", up to about limit bytes, and says how
// many it left out.
func boundedList(names []string, limit int) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 && b.Len()+2+len(n) > limit {
			fmt.Fprintf(&b, " and %d more", len(names)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n)
	}
	return b.String()
}

// errorFields lists the distinct field paths of errs, in order.
func errorFields(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		if !slices.Contains(out, e.Field) {
			out = append(out, e.Field)
		}
	}
	return out
}
