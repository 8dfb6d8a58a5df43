package webhook

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// eventLog records events with the reference they were recorded on.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

var _ events.EventRecorder = (*eventLog)(nil)

func (l *eventLog) Eventf(regarding, _ runtime.Object, eventtype, reason, _, note string, args ...any) {
	ref := "?"
	if r, ok := regarding.(*corev1.ObjectReference); ok {
		ref = fmt.Sprintf("%s %s/%s/%s uid=%s", r.APIVersion, r.Kind, r.Namespace, r.Name, r.UID)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf("%s: %s %s %s", ref, eventtype, reason, fmt.Sprintf(note, args...)))
}

func (l *eventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

// Admission records a Normal event on the workload when it generates or
// prunes policies, and nothing for an update that changes neither.
func TestApplierRecordsPolicyEvents(t *testing.T) {
	s, _ := testServer(t)
	log := &eventLog{}
	s.recorder = log
	m, a := &workloadMutator{s: s}, &workloadApplier{s: s}
	ctx := context.Background()
	// What the API server would send the validating webhook: the object
	// as the mutating webhook left it.
	admit := func(op admissionv1.Operation, obj, old *appsv1.Deployment, dryRun bool) *appsv1.Deployment {
		t.Helper()
		mutated := applyPatch(t, obj, m.Handle(ctx, workloadRequest(t, op, obj, oldOrNil(old), dryRun)))
		if resp := a.Handle(ctx, workloadRequest(t, op, mutated, oldOrNil(old), dryRun)); !resp.Allowed {
			t.Fatalf("%s: %+v", op, resp.AdmissionResponse)
		}
		return mutated
	}
	const ref = "apps/v1 Deployment/team/web uid=uid-web"

	d := webhooktest.Deployment("team", "web", map[string]string{rules.AnnotationDependsOn: "api:8080"})
	d.UID = "uid-web"
	admit(admissionv1.Create, d, nil, true)
	if got := log.take(); len(got) != 0 {
		t.Errorf("dry run recorded %q", got)
	}
	stored := admit(admissionv1.Create, d, nil, false)
	if got, want := log.take(), []string{ref + ": Normal PoliciesGenerated netguard generated NetworkPolicies netguard.web.depends-on, netguard.web.to.api"}; !slices.Equal(got, want) {
		t.Errorf("create: events %q, want %q", got, want)
	}

	// A scale: same annotations, same record.
	scaled := stored.DeepCopy()
	scaled.Spec.Replicas = new(int32(3))
	stored = admit(admissionv1.Update, scaled, stored, false)
	if got := log.take(); len(got) != 0 {
		t.Errorf("an update that changes no policy recorded %q", got)
	}

	// A changed dependency: one policy new, one pruned.
	changed := stored.DeepCopy()
	changed.Annotations[rules.AnnotationDependsOn] = "db:5432"
	stored = admit(admissionv1.Update, changed, stored, false)
	want := []string{
		ref + ": Normal PoliciesGenerated netguard generated NetworkPolicies netguard.web.depends-on, netguard.web.to.db",
		ref + ": Normal PoliciesPruned netguard deleted NetworkPolicies no longer declared: netguard.web.to.api",
	}
	if got := log.take(); !slices.Equal(got, want) {
		t.Errorf("changed dependency: events %q, want %q", got, want)
	}

	// The annotations removed: everything pruned.
	bare := stored.DeepCopy()
	delete(bare.Annotations, rules.AnnotationDependsOn)
	admit(admissionv1.Update, bare, stored, false)
	got := log.take()
	if len(got) != 1 || !strings.HasPrefix(got[0], ref+": Normal PoliciesPruned ") || !strings.Contains(got[0], "netguard.web.depends-on") || !strings.Contains(got[0], "netguard.web.to.db") {
		t.Errorf("annotations removed: events %q, want one PoliciesPruned listing both policies", got)
	}
}

func oldOrNil(d *appsv1.Deployment) runtime.Object {
	if d == nil {
		return nil
	}
	return d
}

func TestBoundedList(t *testing.T) {
	var names []string
	for i := range 100 {
		names = append(names, fmt.Sprintf("netguard.web.to.component-%02d", i))
	}
	got := boundedList(names, maxEventListBytes)
	if len(got) > maxEventListBytes+len(" and 100 more") {
		t.Errorf("list of %d bytes, limit %d", len(got), maxEventListBytes)
	}
	if !strings.HasPrefix(got, "netguard.web.to.component-00, netguard.web.to.component-01, ") || !strings.HasSuffix(got, " more") {
		t.Errorf("bounded list %q", got)
	}
	if got := boundedList([]string{"a", "b"}, maxEventListBytes); got != "a, b" {
		t.Errorf("short list %q", got)
	}
}
