package webhook

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// newListLog is a fake cluster whose lists are paged as the API server
// pages them or, with cache, answered whole as the manager's cache answers.
func newListLog(t *testing.T, cache bool, objs ...client.Object) *webhooktest.Cluster {
	t.Helper()
	c := webhooktest.NewCluster(fake.NewClientBuilder().WithScheme(auditScheme(t)).WithObjects(objs...).Build())
	c.Cache = cache
	return c
}

func annotatedDeployment(namespace, name string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name,
		Annotations: map[string]string{rules.AnnotationComponent: name}}}
}

// Every page of every list is read, in pages of the size asked, the
// NetworkPolicies in pages of their own size.
func TestAuditReaderReadsEveryPage(t *testing.T) {
	objs := []client.Object{auditNamespace("shop", nil)}
	for i := range 5 {
		objs = append(objs, fromAnywhere("shop", fmt.Sprintf("p%d", i)), annotatedDeployment("shop", fmt.Sprintf("d%d", i)))
	}
	objs = append(objs, fromAnywhere("other", "elsewhere"))
	c := newListLog(t, false, objs...)
	counted := map[string]int{}
	r := AuditReader{Metadata: c, MetadataPageSize: 2, Policies: c, PolicyPageSize: 3, Counter: func(what string) func() {
		return func() { counted[what]++ }
	}}
	got, err := r.Objects(context.Background(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Policies["shop"]) != 5 || len(got.Workloads["shop"]) != 5 || len(got.Policies["other"]) != 0 {
		t.Errorf("read %d policies and %d workloads of shop and %d policies of other, want 5, 5 and 0",
			len(got.Policies["shop"]), len(got.Workloads["shop"]), len(got.Policies["other"]))
	}
	if got.Read != 10 {
		t.Errorf("Read %d, want 10", got.Read)
	}
	want := []string{
		"NetworkPolicyList limit=3 continue=", "NetworkPolicyList limit=3 continue=3",
		"DeploymentList limit=2 continue=", "DeploymentList limit=2 continue=2", "DeploymentList limit=2 continue=4",
	}
	if pages := slices.DeleteFunc(slices.Clone(c.Lists()), func(s string) bool { return !slices.Contains(want, s) }); !reflect.DeepEqual(pages, want) {
		t.Errorf("pages:\n got %q\nwant %q", c.Lists(), want)
	}
	if counted["NetworkPolicies"] != 5 || counted["Deployments"] != 5 {
		t.Errorf("counted %v, want 5 NetworkPolicies and 5 Deployments", counted)
	}
}

// A page size of 0 reads a cache: one request per list, whose continue
// token (the cache always sets one) is not followed.
func TestAuditReaderReadsACacheWhole(t *testing.T) {
	c := newListLog(t, true, auditNamespace("b", nil), auditNamespace("a", nil), fromAnywhere("a", "p1"), fromAnywhere("a", "p2"))
	r := AuditReader{Metadata: c}
	namespaces, err := r.Namespaces(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if names := []string{namespaces[0].Name, namespaces[1].Name}; !reflect.DeepEqual(names, []string{"a", "b"}) {
		t.Errorf("namespaces %q, want them sorted", names)
	}
	got, err := r.Objects(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Policies["a"]) != 2 {
		t.Errorf("%d policies, want 2", len(got.Policies["a"]))
	}
	for _, l := range c.Lists() {
		if l[len(l)-len("limit=0 continue="):] != "limit=0 continue=" {
			t.Errorf("list %q: a cache must be read in one request", l)
		}
	}
}

// Both audits read the same kinds in the same order: NetworkPolicies, the
// workload kinds in rules.WorkloadKinds order, then LocalNetworkConfigs.
func TestAuditReaderKindOrder(t *testing.T) {
	c := newListLog(t, false)
	if _, err := (AuditReader{Metadata: c, MetadataPageSize: 10}).Objects(context.Background(), "shop"); err != nil {
		t.Fatal(err)
	}
	want := []string{"NetworkPolicyList limit=10 continue="}
	for _, k := range rules.WorkloadKinds() {
		want = append(want, k.Kind+"List limit=10 continue=")
	}
	want = append(want, "LocalNetworkConfigList limit=10 continue=")
	if !reflect.DeepEqual(c.Lists(), want) {
		t.Errorf("lists:\n got %q\nwant %q", c.Lists(), want)
	}
}

// Only annotated workloads are the audit's input, and not a Pod or Job made
// from a template netguard handles: admission skips those. Read counts
// them all.
func TestAuditReaderFiltersWorkloads(t *testing.T) {
	ann := map[string]string{rules.AnnotationComponent: "web"}
	owner := func(apiVersion, kind string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: "o", UID: "u", Controller: ptr.To(true)}}
	}
	c := newListLog(t, false,
		annotatedDeployment("shop", "web"),
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "plain"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "bare", Annotations: ann}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "of-a-replicaset", Annotations: ann, OwnerReferences: owner("apps/v1", "ReplicaSet")}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "of-an-operator", Annotations: ann, OwnerReferences: owner("example.com/v1", "Database")}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "of-a-cronjob", Annotations: ann, OwnerReferences: owner("batch/v1", "CronJob")}},
	)
	got, err := (AuditReader{Metadata: c, MetadataPageSize: 500}).Objects(context.Background(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, w := range got.Workloads["shop"] {
		refs = append(refs, w.Kind+"/"+w.Name)
	}
	if want := []string{"Deployment/web", "Pod/bare", "Pod/of-an-operator"}; !reflect.DeepEqual(refs, want) {
		t.Errorf("workloads %q, want %q", refs, want)
	}
	if got.Read != 6 {
		t.Errorf("Read %d, want 6", got.Read)
	}
}

// A CRD that is not installed has no objects: no NetworkProfiles (and
// Profiles says the API is missing, so that workloads naming one are
// unknownProfile), no LocalNetworkConfigs. Any other error is returned:
// a list that cannot be read is never taken for an empty one.
func TestAuditReaderMissingCRD(t *testing.T) {
	ctx := context.Background()
	noMatch := func(kind string) error {
		return &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: netguardv1alpha1.GroupVersion.Group, Kind: kind}}
	}
	gone := apierrors.NewNotFound(schema.GroupResource{Group: netguardv1alpha1.GroupVersion.Group, Resource: "networkprofiles"}, "")
	for _, err := range []error{noMatch("NetworkProfile"), gone} {
		c := newListLog(t, false)
		c.Fail["NetworkProfileList"] = err
		profiles, installed, got := (AuditReader{Metadata: c}).Profiles(ctx)
		if got != nil || installed || profiles == nil || len(profiles) != 0 {
			t.Errorf("%v: profiles %v, installed %v, error %v; want none, not installed, no error", err, profiles, installed, got)
		}
	}
	c := newListLog(t, false, annotatedDeployment("shop", "web"))
	c.Fail["LocalNetworkConfigList"] = noMatch("LocalNetworkConfig")
	objs, err := (AuditReader{Metadata: c}).Objects(ctx, "shop")
	if err != nil || len(objs.Workloads["shop"]) != 1 || len(objs.LocalConfigs["shop"]) != 0 {
		t.Errorf("without the LocalNetworkConfig API: %v, %v", objs, err)
	}

	// Installed later, the API is found at the next read.
	delete(c.Fail, "NetworkProfileList")
	if _, installed, err := (AuditReader{Metadata: c}).Profiles(ctx); !installed || err != nil {
		t.Errorf("installed %v, error %v; want the API found", installed, err)
	}

	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "x"}, "", errors.New("no"))
	for _, kind := range []string{"NetworkProfileList", "LocalNetworkConfigList", "NetworkPolicyList", "PodList"} {
		c := newListLog(t, false)
		c.Fail[kind] = forbidden
		_, _, perr := (AuditReader{Metadata: c}).Profiles(ctx)
		_, oerr := (AuditReader{Metadata: c}).Objects(ctx, "shop")
		if err := errors.Join(perr, oerr); !apierrors.IsForbidden(err) {
			t.Errorf("%s forbidden: error %v, want it returned", kind, err)
		}
	}
}

// A namespace that does not exist is an error apierrors.IsNotFound knows,
// so that the command can say so.
func TestAuditReaderNamespace(t *testing.T) {
	r := AuditReader{Metadata: newListLog(t, false, auditNamespace("shop", map[string]string{"team": "a"}))}
	ns, err := r.Namespace(context.Background(), "shop")
	if err != nil || ns.Name != "shop" || ns.Labels["team"] != "a" {
		t.Errorf("shop: %v, %v", ns, err)
	}
	if _, err := r.Namespace(context.Background(), "gone"); !apierrors.IsNotFound(err) {
		t.Errorf("gone: %v, want not found", err)
	}
}

// A read error fails the background audit's cycle: the gauge keeps what the
// last pass found rather than dropping to no findings.
func TestAuditReadErrorKeepsTheFindings(t *testing.T) {
	c := newListLog(t, false, auditNamespace("shop", nil), namespaceDefaultDeny("shop"), fromAnywhere("shop", "open"))
	a, _ := testAuditor(t, c, AuditOptions{})
	if err := a.cycle(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := gauge(t)
	if len(before) == 0 {
		t.Fatal("no findings to begin with")
	}
	c.Fail["NetworkPolicyList"] = apierrors.NewServiceUnavailable("etcd is away")
	if err := a.cycle(context.Background()); err == nil {
		t.Fatal("the cycle succeeded without its NetworkPolicies")
	}
	if after := gauge(t); !reflect.DeepEqual(after, before) {
		t.Errorf("gauge after a failed read %v, want %v", after, before)
	}
	// Without the LocalNetworkConfig API the audit goes on.
	delete(c.Fail, "NetworkPolicyList")
	c.Fail["LocalNetworkConfigList"] = &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "netguard.io", Kind: "LocalNetworkConfig"}}
	if err := a.cycle(context.Background()); err != nil {
		t.Errorf("cycle without the LocalNetworkConfig API: %v", err)
	}
}
