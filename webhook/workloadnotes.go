package webhook

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"golang.org/x/time/rate"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
// the annotations are written, in the validating webhook, while the
// policies are written. A workload written a moment ago (kubectl
// apply of api, then web) may not be cached yet, so a warning is confirmed
// with the API server before it is given: a false warning would teach people
// to ignore the true ones. The confirmation is one metadata list per kind,
// all at once, each of at most confirmListLimit objects, at most 5 times a
// second per replica (newConfirmationLimiter); when a namespace holds more, a list
// fails or the rate is spent, it says nothing: warnings must not cost an
// admission, and a tenant must not make netguard read an unbounded list on
// every write. What a confirmation read is reused for confirmationTTL by
// the namespace's later confirmations (confirmationCache).
func (s *Server) dependencyWarnings(ctx context.Context, w rules.Workload) []string {
	ann, _, errs := rules.ParseAnnotations(w.Name, w.Annotations, field.NewPath("metadata"))
	if len(errs) > 0 || len(ann.DependsOn) == 0 {
		return nil
	}
	warnings := undeclaredIn(ctx, s.injector.cache, w, ann, 0)
	if len(warnings) == 0 || s.apiReader == nil {
		return warnings
	}
	d := s.confirmed.declarations(ctx, w.Namespace, s.confirmations, func(ctx context.Context) (*declarations, error) {
		return readDeclarations(ctx, s.apiReader, w.Namespace, confirmListLimit)
	})
	if d == nil {
		// Under load the confirmations would cost the API server more
		// than the warnings are worth, or the namespace is too large to
		// list: say nothing rather than guess.
		return nil
	}
	return d.undeclared(w, ann)
}

// newConfirmationLimiter bounds how often, per replica, a dependency
// warning is confirmed with the API server (one list per workload kind each
// time): 5 a second, bursts of 10. Past it the warning is not given, so that
// a flood of annotated writes or dry runs cannot turn into a flood of lists.
// A confirmation answered by confirmationCache reads nothing and spends none
// of it.
func newConfirmationLimiter() *rate.Limiter { return rate.NewLimiter(5, 10) }

// confirmListLimit bounds each list that confirms a dependency warning with
// the API server.
const confirmListLimit = 500

// errTooMany is a confirming list that did not hold all of a namespace's
// objects of a kind. It stays so for a while, unlike a failed list, so
// confirmationCache keeps it (as "nothing to say").
var errTooMany = errors.New("too many objects to confirm dependency warnings")

// fromWatchCache makes a confirming list read the API server's watch cache
// as it is: resourceVersion "1" with resourceVersionMatch NotOlderThan is
// any state not older than the first, served at once with the limit
// honoured. netguard's informers are fed from that cache, so it holds every
// workload netguard's cache does and those stored since. A consistent read
// (no resourceVersion) would be fresher by the etcd watch's few
// milliseconds, but in a namespace where a kind is idle the API server
// waits for etcd's next progress notification to serve it, up to 100 ms,
// and the workload's write waited for that. resourceVersion "0" would be
// served at once too, but the watch cache ignores the limit for it.
// Each list gets its own: controller-runtime writes into Raw.
func fromWatchCache() client.ListOption {
	return &client.ListOptions{Raw: &metav1.ListOptions{
		ResourceVersion:      "1",
		ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
	}}
}

// undeclaredIn is dependencyWarnings against one reader. With limit > 0 the
// lists run concurrently, each of at most limit objects, and a namespace
// with more of a kind gives no warnings.
func undeclaredIn(ctx context.Context, r client.Reader, w rules.Workload, ann rules.Annotations, limit int64) []string {
	d, err := readDeclarations(ctx, r, w.Namespace, limit)
	if err != nil {
		logf.FromContext(ctx).V(1).Info("cannot list workloads for dependency warnings", "error", err.Error())
		return nil
	}
	return d.undeclared(w, ann)
}

// declarations are the components a namespace's workloads and
// LocalNetworkConfigs declare, as one read found them, indexed so that
// judging a workload's dependencies against them costs a few map lookups
// however large the namespace: confirmationCache answers many workloads
// with one. They are never changed once read.
type declarations struct {
	// components counts the annotated workloads that declare each
	// component; byWorkload is what each declares, by "Kind/name".
	components map[string]int
	byWorkload map[string]string
	// unannotated are the workloads without netguard annotations by name,
	// as "Kind/name" in the order of workloadKinds.
	unannotated map[string][]string
	// local are the components of the LocalNetworkConfigs.
	local map[string]bool
}

// readDeclarations lists the namespace's workloads (metadata) and
// LocalNetworkConfigs from r. With limit > 0 the lists run concurrently,
// each of at most limit objects, and a namespace with more of a kind is
// errTooMany.
func readDeclarations(ctx context.Context, r client.Reader, ns string, limit int64) (*declarations, error) {
	lists := make([]*metav1.PartialObjectMetadataList, len(workloadKinds))
	locals := &netguardv1alpha1.LocalNetworkConfigList{}
	read := make([]func() error, 0, len(workloadKinds)+1)
	opts := func() []client.ListOption {
		opts := []client.ListOption{client.InNamespace(ns)}
		if limit > 0 {
			opts = append(opts, client.Limit(limit), fromWatchCache())
		}
		return opts
	}
	for i, kind := range workloadKinds {
		lists[i] = workloadMetadataList(kind)
		read = append(read, func() error {
			if err := r.List(ctx, lists[i], opts()...); err != nil {
				return fmt.Errorf("list %ss: %w", kind, err)
			}
			if limit > 0 && lists[i].Continue != "" {
				return fmt.Errorf("more than %d %ss: %w", limit, kind, errTooMany)
			}
			return nil
		})
	}
	read = append(read, func() error {
		// A cluster without the CRD has none.
		if err := r.List(ctx, locals, opts()...); err != nil {
			locals.Items = nil
			return nil
		}
		if limit > 0 && locals.Continue != "" {
			return fmt.Errorf("more than %d LocalNetworkConfigs: %w", limit, errTooMany)
		}
		return nil
	})
	if err := runAll(limit > 0, read); err != nil {
		return nil, err
	}
	d := &declarations{components: map[string]int{}, byWorkload: map[string]string{}, unannotated: map[string][]string{}, local: map[string]bool{}}
	for i, kind := range workloadKinds {
		for j := range lists[i].Items {
			o := &lists[i].Items[j]
			ref := kind + "/" + o.Name
			if !rules.IsAnnotated(o.Annotations) {
				d.unannotated[o.Name] = append(d.unannotated[o.Name], ref)
				continue
			}
			c := o.Name
			if v, ok := o.Annotations[rules.AnnotationComponent]; ok {
				c = strings.TrimSpace(v)
			}
			d.components[c]++
			d.byWorkload[ref] = c
		}
	}
	for _, l := range locals.Items {
		for c := range l.Spec.Components {
			d.local[c] = true
		}
	}
	return d, nil
}

// undeclared are the warnings about w's dependencies on components that
// nothing in d declares. w's own version in d is left out: the request's
// version counts, not the stored one.
func (d *declarations) undeclared(w rules.Workload, ann rules.Annotations) []string {
	self := w.Kind + "/" + w.Name
	own, annotated := d.byWorkload[self]
	declared := func(c string) bool {
		n := d.components[c]
		if annotated && own == c {
			n--
		}
		return c == ann.Component || n > 0 || d.local[c]
	}
	unannotated := func(name string) string {
		for _, ref := range d.unannotated[name] {
			if ref != self {
				return ref
			}
		}
		return ""
	}
	return rules.UndeclaredDependencies(w.Namespace, ann.DependsOn, declared, unannotated)
}

// runAll runs fns, concurrently when concurrent is set, and returns the
// first error in the order of fns.
func runAll(concurrent bool, fns []func() error) error {
	errs := make([]error, len(fns))
	if !concurrent {
		for i, f := range fns {
			if errs[i] = f(); errs[i] != nil {
				return errs[i]
			}
		}
		return nil
	}
	var wg sync.WaitGroup
	for i, f := range fns {
		wg.Go(func() { errs[i] = f() })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
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
