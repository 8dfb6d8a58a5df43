package webhook

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
)

// LocalNetworkConfig admission. One validating webhook judges the object and,
// when it passes, writes its policies: unlike a workload there is nothing to
// patch, so the mutating half of injection has no work. Like workload
// admission it fails open (failurePolicy Ignore): the controller judges
// every LocalNetworkConfig again before it writes anything, so an object
// admitted while netguard was away gets exactly what it would have got, or
// nothing and a status saying why. See docs/localnetworkconfig.md.

// PathValidateLocalNetworkConfig is the LocalNetworkConfig webhook's path.
const PathValidateLocalNetworkConfig = "/validate-localnetworkconfig"

// localResult is what netguard makes of one LocalNetworkConfig in its
// namespace.
type localResult struct {
	// gen is generated for the components l owns (lost ones excluded).
	gen rules.LocalGenerated
	// errs are the user's mistakes: invalid fields, missing or unoffered
	// profiles, components another claimant owns, overlapping selectors.
	errs field.ErrorList
	// lost are the components another claimant owns.
	lost map[string]bool
}

// localConfigs lists the namespace's LocalNetworkConfigs from the cache,
// other than the one named skip.
func (in *injector) localConfigs(ctx context.Context, namespace, skip string) ([]rules.LocalConfig, error) {
	list := &netguardv1alpha1.LocalNetworkConfigList{}
	if err := in.cache.List(ctx, list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list LocalNetworkConfigs: %w", err)
	}
	out := make([]rules.LocalConfig, 0, len(list.Items))
	for i := range list.Items {
		o := &list.Items[i]
		if o.Name == skip || !o.DeletionTimestamp.IsZero() {
			continue
		}
		out = append(out, LocalConfigToRules(o, nil))
	}
	return out, nil
}

// annotatedClaimants lists the namespace's workloads that claim a component.
func (in *injector) annotatedClaimants(ctx context.Context, namespace string) ([]rules.Workload, error) {
	var out []rules.Workload
	for _, kind := range workloadKinds {
		list := workloadMetadataList(kind)
		if err := in.cache.List(ctx, list, client.InNamespace(namespace), client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("list %ss: %w", kind, err)
		}
		for i := range list.Items {
			o := &list.Items[i]
			if !o.DeletionTimestamp.IsZero() {
				continue
			}
			if w := toRulesWorkload(kind, o); rules.IsAnnotated(w.Annotations) {
				out = append(out, w)
			}
		}
	}
	return out, nil
}

// generateLocal judges l in its namespace and generates what it owns.
// newcomers are the components l starts to claim (admission: all of them on
// a create, those not in the old object on an update); a newcomer is
// refused while any other live claimant has it, whatever their ages. An
// error means netguard could not read what it needs.
func (in *injector) generateLocal(ctx context.Context, l rules.LocalConfig, newcomers map[string]bool) (localResult, error) {
	if l.NamespaceLabels == nil && in.namespaces != nil {
		labels, err := in.namespaces.NamespaceLabels(ctx, l.Namespace)
		if err != nil {
			return localResult{}, fmt.Errorf("read namespace %q: %w", l.Namespace, err)
		}
		l.NamespaceLabels = labels
	}
	if _, errs := rules.ValidateLocalConfig(l); len(errs) > 0 {
		return localResult{errs: errs}, nil
	}
	others, err := in.localConfigs(ctx, l.Namespace, l.Name)
	if err != nil {
		return localResult{}, err
	}
	ws, err := in.annotatedClaimants(ctx, l.Namespace)
	if err != nil {
		return localResult{}, err
	}
	res := localResult{lost: map[string]bool{}}
	if len(newcomers) > 0 {
		before := rules.CollectComponents(ws, others)
		for _, c := range l.ComponentNames() {
			if owner, ok := before.Owners[c]; ok && newcomers[c] {
				res.errs = append(res.errs, rules.LocalDuplicateComponent(l, c, owner))
				res.lost[c] = true
			}
		}
	}
	nc := rules.CollectComponents(ws, append(others, l))
	for _, e := range rules.LocalClaimErrors(l, nc) {
		if e.Type == field.ErrorTypeDuplicate {
			if c, ok := e.BadValue.(string); ok {
				if res.lost[c] {
					continue
				}
				res.lost[c] = true
			}
		}
		res.errs = append(res.errs, e)
	}
	profiles, err := in.localProfiles(ctx, l)
	if err != nil {
		return localResult{}, err
	}
	l, err = in.withLocalConsent(ctx, l.Without(res.lost))
	if err != nil {
		return localResult{}, err
	}
	gen, gerrs := rules.GenerateLocal(l, profiles, nc.Index)
	res.gen = gen
	res.errs = append(res.errs, gerrs...)
	return res, nil
}

// localIndex resolves the selectors of the components w depends on that
// LocalNetworkConfigs of its namespace declare, or nil when there are none:
// then every target is selected by the netguard.io/component label. It costs
// one list of the namespace's cached LocalNetworkConfigs (usually none), and
// a pass over its workloads only when one declares a component w depends on.
func (in *injector) localIndex(ctx context.Context, w rules.Workload) (rules.ComponentIndex, error) {
	v, ok := w.Annotations[rules.AnnotationDependsOn]
	if !ok {
		return nil, nil
	}
	deps, _, errs := rules.ParseDependsOn(v, field.NewPath("metadata"))
	if len(errs) > 0 || len(deps) == 0 {
		return nil, nil
	}
	locals, err := in.localConfigs(ctx, w.Namespace, "")
	if err != nil {
		return nil, err
	}
	declared := false
	for _, l := range locals {
		names := l.ComponentNames()
		for _, d := range deps {
			if slices.Contains(names, d.Component) {
				declared = true
			}
		}
	}
	if !declared {
		return nil, nil
	}
	ws, err := in.annotatedClaimants(ctx, w.Namespace)
	if err != nil {
		return nil, err
	}
	return rules.CollectComponents(ws, locals).Index.ForDependencies(deps), nil
}

// localProfiles reads the NetworkProfiles l names (cache, then the API
// server for a miss); missing ones are left out for the generator to
// report.
func (in *injector) localProfiles(ctx context.Context, l rules.LocalConfig) (map[string]rules.Profile, error) {
	out := map[string]rules.Profile{}
	for _, c := range l.Components {
		for _, d := range c.DependsOn {
			name := d.NetworkProfile
			if name == "" {
				continue
			}
			if _, ok := out[name]; ok {
				continue
			}
			p := &netguardv1alpha1.NetworkProfile{}
			err := in.cache.Get(ctx, types.NamespacedName{Name: name}, p)
			if apierrors.IsNotFound(err) && in.live != nil {
				err = in.live.Get(ctx, types.NamespacedName{Name: name}, p)
			}
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("read NetworkProfile %q: %w", name, err)
			}
			out[name] = ProfileToRules(p)
		}
	}
	return out, nil
}

// localWorkload is l as the owner of generated policies, for apply and
// deleteGenerated, which find a owner's policies by its Ref.
func localWorkload(l rules.LocalConfig) rules.Workload {
	return rules.Workload{Kind: rules.KindLocalNetworkConfig, Namespace: l.Namespace, Name: l.Name, UID: l.UID}
}

// judgeLocal evaluates gen at the modes of namespace.
func (s *Server) judgeLocal(ctx context.Context, namespace string, gen rules.LocalGenerated) (generatedVerdict, error) {
	return s.judge(ctx, namespace, func(l rules.Level, v rules.Version) []rules.Violation {
		return rules.LocalGeneratedViolations(gen, l, v)
	})
}

// localValidator admits LocalNetworkConfigs and writes their policies.
type localValidator struct {
	s *Server
}

func decodeLocal(req admission.Request, old bool) (*netguardv1alpha1.LocalNetworkConfig, error) {
	if req.Kind.Group != netguardv1alpha1.GroupVersion.Group || req.Kind.Kind != rules.KindLocalNetworkConfig {
		return nil, fmt.Errorf("this webhook handles netguard.io LocalNetworkConfigs, not %s", req.Kind.String())
	}
	raw, name := req.Object.Raw, "object"
	if old {
		raw, name = req.OldObject.Raw, "oldObject"
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("request.%s is missing", name)
	}
	o := &netguardv1alpha1.LocalNetworkConfig{}
	if err := utiljson.Unmarshal(raw, o); err != nil {
		return nil, fmt.Errorf("request.%s is not a LocalNetworkConfig: %v", name, err)
	}
	if o.Namespace == "" {
		o.Namespace = req.Namespace
	}
	if o.Namespace != req.Namespace {
		return nil, fmt.Errorf("request.%s.metadata.namespace %q is not request.namespace %q", name, o.Namespace, req.Namespace)
	}
	return o, nil
}

func (v *localValidator) Handle(ctx context.Context, req admission.Request) admission.Response {
	resp, d := v.handle(ctx, req)
	admissionDecisions.WithLabelValues("localnetworkconfigs", operationLabel(req.Operation), d.decision, d.mode, d.level).Inc()
	return resp
}

func (v *localValidator) handle(ctx context.Context, req admission.Request) (admission.Response, decision) {
	log := logf.FromContext(ctx)
	s := v.s
	if err := checkRequest(req); err != nil {
		return admission.Errored(http.StatusBadRequest, err), decision{"error", "inject", "none"}
	}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed(""), decision{"allow", "inject", "none"}
	}
	o, err := decodeLocal(req, false)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err), decision{"error", "inject", "none"}
	}
	if s.cfg.namespaceExempt(req.Namespace) || beingDeleted(o) {
		return admission.Allowed(""), decision{"allow", "exempt", "none"}
	}
	if req.Operation == admissionv1.Update && !specChanged(req, o) {
		// Status and metadata writes (the controller's own among them)
		// change nothing netguard generates.
		return admission.Allowed(""), decision{"allow", "inject", "none"}
	}
	if !s.synced.Load() {
		return admission.Allowed("").WithWarnings(notSyncedLocalWarning), decision{"allow", "inject", "none"}
	}
	l := LocalConfigToRules(o, nil)
	if req.Operation == admissionv1.Create {
		// Not persisted yet: see workloadApplier. The controller adds the
		// ownerReference once the object exists.
		l.UID = ""
	}
	res, err := s.injector.generateLocal(ctx, l, localNewcomers(req, l))
	if err != nil {
		log.Info("cannot generate policies; admitting and leaving it to the controller", "error", err.Error())
		return admission.Allowed("").WithWarnings("netguard: " + err.Error() + "; policies will be generated when netguard can read them"), decision{"allow", "inject", "none"}
	}
	notes := prefixed(res.gen.Warnings)
	if len(res.errs) > 0 {
		level := s.enforceLevel(ctx, req.Namespace)
		if level != rules.LevelPrivileged {
			log.Info("denied LocalNetworkConfig", "fields", errorFields(res.errs))
			st := apierrors.NewInvalid(schema.GroupKind{Group: req.Kind.Group, Kind: req.Kind.Kind}, o.Name, res.errs).ErrStatus
			return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &st, Warnings: notes}}, decision{"deny", "inject", string(level)}
		}
		for _, e := range res.errs {
			notes = append(notes, "netguard: "+e.Error()+"; no NetworkPolicies were generated")
		}
		return admission.Allowed("").WithWarnings(notes...), decision{"allow", "inject", string(level)}
	}
	verdict, err := s.judgeLocal(ctx, req.Namespace, res.gen)
	if err != nil {
		log.Info("cannot read the namespace's levels to judge the generated policies; admitting, the controller judges them again", "error", err.Error())
		return admission.Allowed("").WithWarnings(append(notes, "netguard: policies will be generated by the controller once it can read the namespace's levels")...), decision{"allow", "inject", "none"}
	}
	if len(verdict.denied) > 0 {
		log.Info("denied LocalNetworkConfig whose generated policies violate the namespace's level", "level", verdict.enforce.String(), "rules", ruleIDs(verdict.denied))
		return verdict.denial(req, o.Name), decision{"deny", "inject", string(verdict.enforce.Level)}
	}
	notes = append(notes, verdict.warnings...)
	if req.DryRun != nil && *req.DryRun {
		for _, p := range res.gen.Policies {
			notes = append(notes, "netguard (dry run): would generate NetworkPolicy "+p.Name)
		}
		return admission.Allowed("").WithWarnings(notes...), decision{"allow", "inject", "none"}
	}
	applied, deleted, err := s.injector.apply(ctx, localWorkload(l), rules.Generated{Policies: res.gen.Policies})
	if err != nil {
		log.Info("could not apply generated policies; admitting and leaving it to the controller", "error", err.Error())
		notes = append(notes, "netguard: could not write all NetworkPolicies yet ("+err.Error()+"); the controller will retry")
	} else {
		log.V(1).Info("generated policies", "applied", applied, "deleted", deleted)
	}
	resp := admission.Allowed("").WithWarnings(notes...)
	if len(verdict.auditAnnotations) > 0 {
		resp.AuditAnnotations = verdict.auditAnnotations
	}
	return resp, decision{"allow", "inject", "none"}
}

const notSyncedLocalWarning = "netguard is starting and its caches are not synced: NetworkPolicies for this LocalNetworkConfig will be generated by the controller shortly"

// specChanged reports whether an update changes the spec.
func specChanged(req admission.Request, o *netguardv1alpha1.LocalNetworkConfig) bool {
	old, err := decodeLocal(req, true)
	if err != nil {
		return true
	}
	a, errA := utiljson.Marshal(old.Spec)
	b, errB := utiljson.Marshal(o.Spec)
	return errA != nil || errB != nil || string(a) != string(b)
}

// localNewcomers are the components the request starts to claim.
func localNewcomers(req admission.Request, l rules.LocalConfig) map[string]bool {
	out := map[string]bool{}
	for _, c := range l.ComponentNames() {
		out[c] = true
	}
	if req.Operation != admissionv1.Update {
		return out
	}
	old, err := decodeLocal(req, true)
	if err != nil {
		return out
	}
	for name := range old.Spec.Components {
		delete(out, name)
	}
	return out
}
