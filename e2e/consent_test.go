package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// Kannika Armory across a system and a resource namespace, by consent and
// with no NetworkProfile (docs/security.md, "Cross-namespace consent"):
//
//	backup (data)  -> event-gateway (system) 8082   push events
//	api (system)   -> backup (data)          9000   scrape metrics
//
// Each namespace's tenant declares its own side; a third namespace that
// declares the same dependency without being exposed to gets nothing.
func TestConsentArmory(t *testing.T) {
	startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	for _, order := range []string{"consumer-first", "provider-first"} {
		t.Run(order, func(t *testing.T) {
			sys, data, other := "kannika-system-"+order[:1], "kannika-data-"+order[:1], "kannika-other-"+order[:1]
			tenants := map[string]*consentTenant{}
			for _, ns := range []string{sys, data, other} {
				if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
					t.Fatal(err)
				}
				tenants[ns] = newConsentTenant(t, ctx, "owner-of-"+ns, ns)
			}
			gateway := webhooktest.Deployment(sys, "event-gateway", map[string]string{
				rules.AnnotationExposeTo: "kubernetes.io/metadata.name=" + data + ":8082",
			})
			api := webhooktest.Deployment(sys, "api", map[string]string{
				rules.AnnotationDependsOn: data + "/backup:9000",
			})
			backup := webhooktest.Deployment(data, "backup", map[string]string{
				rules.AnnotationDependsOn: sys + "/event-gateway:8082",
				rules.AnnotationExposeTo:  "kubernetes.io/metadata.name=" + sys + ":9000",
			})
			intruder := webhooktest.Deployment(other, "backup", map[string]string{
				rules.AnnotationDependsOn: sys + "/event-gateway:8082 " + data + "/backup:9000",
			})

			if order == "consumer-first" {
				warnings := tenants[data].create(t, ctx, backup)
				if !containsAll(warnings, `"`+sys+`/event-gateway:8082" is one-sided and opens nothing`, `"kubernetes.io/metadata.name=`+sys+`:9000" is one-sided and opens nothing yet`) {
					t.Errorf("consumer alone: warnings %q, want one-sided warnings for both declarations", warnings)
				}
				if got, _ := generatedNames(ctx, cs, data, "Deployment/backup"); len(got) != 0 {
					t.Errorf("a one-sided declaration generated %v", got)
				}
				tenants[sys].create(t, ctx, gateway)
				tenants[sys].create(t, ctx, api)
			} else {
				warnings := tenants[sys].create(t, ctx, gateway)
				if !containsAll(warnings, "is one-sided and opens nothing yet") {
					t.Errorf("provider alone: warnings %q", warnings)
				}
				tenants[sys].create(t, ctx, api)
				tenants[data].create(t, ctx, backup)
			}
			warnings := tenants[other].create(t, ctx, intruder)
			if !containsAll(warnings, `does not expose port 8082 to namespace "`+other+`"`, `does not expose port 9000 to namespace "`+other+`"`) {
				t.Errorf("intruder: warnings %q", warnings)
			}

			// Each side's policies, in its own namespace, owned by its own
			// workload; the side that came first opens through the controller.
			eventually(t, 60*time.Second, "both sides agreed", func() error {
				for _, c := range []struct{ ns, ref string }{
					{sys, "Deployment/event-gateway"}, {sys, "Deployment/api"}, {data, "Deployment/backup"},
				} {
					want := map[string][]string{
						"Deployment/event-gateway": {"netguard.event-gateway.cross-namespace-ingress"},
						"Deployment/api":           {"netguard.api.cross-namespace-egress"},
						"Deployment/backup":        {"netguard.backup.cross-namespace-egress", "netguard.backup.cross-namespace-ingress"},
					}[c.ref]
					if err := wantNames(ctx, cs, c.ns, c.ref, want...)(); err != nil {
						return err
					}
				}
				return wantNames(ctx, cs, other, "Deployment/backup")()
			})
			in, err := cs.NetworkingV1().NetworkPolicies(sys).Get(ctx, "netguard.event-gateway.cross-namespace-ingress", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(in.Spec.Ingress) != 1 || len(in.Spec.Ingress[0].From) != 1 ||
				in.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != data ||
				in.Spec.Ingress[0].From[0].PodSelector.MatchLabels[rules.LabelComponent] != "backup" {
				t.Errorf("event-gateway ingress %+v: want exactly %s's backup", in.Spec.Ingress, data)
			}

			pods := armoryPods(sys, data, other)
			open := []string{
				fmt.Sprintf("%s/backup -> %s/event-gateway 8082", data, sys),
				fmt.Sprintf("%s/api -> %s/backup 9000", sys, data),
			}
			eventually(t, 30*time.Second, "exactly the agreed paths open", func() error {
				return reachExactly(ctx, cs, []string{sys, data, other}, pods, open)
			})

			// The provider withdraws its consent: both sides close, without
			// a write to the consumer.
			err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
				g, err := tenants[sys].cs.AppsV1().Deployments(sys).Get(ctx, "event-gateway", metav1.GetOptions{})
				if err != nil {
					return err
				}
				g.Annotations[rules.AnnotationExposeTo] = "kubernetes.io/metadata.name=" + data + ":8083"
				_, err = tenants[sys].cs.AppsV1().Deployments(sys).Update(ctx, g, metav1.UpdateOptions{})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, 60*time.Second, "withdrawn consent closes both sides", func() error {
				if err := wantNames(ctx, cs, sys, "Deployment/event-gateway")(); err != nil {
					return err
				}
				if err := wantNames(ctx, cs, data, "Deployment/backup", "netguard.backup.cross-namespace-ingress")(); err != nil {
					return err
				}
				return reachExactly(ctx, cs, []string{sys, data, other}, pods, open[1:])
			})
		})
	}
}

// consentTenant is a namespace's owner, with no rights outside it.
type consentTenant struct {
	cs       kubernetes.Interface
	warnings *warningCollector
	ns       string
}

func newConsentTenant(t *testing.T, ctx context.Context, user, ns string) *consentTenant {
	t.Helper()
	cfg, _, err := testCluster.AddTenant(ctx, user, ns, "admin")
	if err != nil {
		t.Fatal(err)
	}
	cfg = rest.CopyConfig(cfg)
	w := &warningCollector{}
	cfg.WarningHandler = w
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &consentTenant{cs: cs, warnings: w, ns: ns}
}

// create creates d as the tenant and returns the warnings of the request.
func (tn *consentTenant) create(t *testing.T, ctx context.Context, d *appsv1.Deployment) []string {
	t.Helper()
	tn.warnings.reset()
	if _, err := tn.cs.AppsV1().Deployments(tn.ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("%s creates %s: %v", tn.ns, d.Name, err)
	}
	return tn.warnings.get()
}

func containsAll(warnings []string, subs ...string) bool {
	all := strings.Join(warnings, "\n")
	for _, s := range subs {
		if !strings.Contains(all, s) {
			return false
		}
	}
	return true
}

func armoryPods(sys, data, other string) []rules.Endpoint {
	pod := func(ns, c string) rules.Endpoint {
		return rules.Endpoint{Namespace: ns, Name: c, Labels: map[string]string{rules.LabelComponent: c}}
	}
	return []rules.Endpoint{pod(sys, "event-gateway"), pod(sys, "api"), pod(data, "backup"), pod(other, "backup")}
}

// reachExactly evaluates the policies of namespaces, as `netguard reach`
// does, and checks that between pods, on 8082 and 9000, exactly the paths
// in open ("NS/NAME -> NS/NAME PORT") are allowed.
func reachExactly(ctx context.Context, cs kubernetes.Interface, namespaces []string, pods []rules.Endpoint, open []string) error {
	var policies []*networkingv1.NetworkPolicy
	for _, ns := range namespaces {
		list, err := cs.NetworkingV1().NetworkPolicies(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for i := range list.Items {
			policies = append(policies, &list.Items[i])
		}
	}
	ev, err := rules.NewEvaluator(policies)
	if err != nil {
		return err
	}
	var wrong []string
	for _, from := range pods {
		for _, to := range pods {
			if from.Namespace == to.Namespace && from.Name == to.Name {
				continue
			}
			for _, n := range []int32{8082, 9000} {
				key := fmt.Sprintf("%s/%s -> %s/%s %d", from.Namespace, from.Name, to.Namespace, to.Name, n)
				if v := ev.Reach(from, to, rules.Port{Number: n}); v.Allowed != slices.Contains(open, key) {
					wrong = append(wrong, fmt.Sprintf("%s: %s", key, v.Reason()))
				}
			}
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("paths not as agreed:\n%s", strings.Join(wrong, "\n"))
	}
	return nil
}
