package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook/webhooktest"
)

// Item 1 of issue 17: Jobs, CronJobs and bare Pods are workloads; the pods a
// workload controller makes never reach netguard; a component label that
// netguard did not set is refused.

func podSpec() corev1.PodSpec {
	return corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}}
}

func job(ns, name string, annotations map[string]string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
			Spec:       podSpec(),
		}},
	}
}

func cronJob(ns, name string, annotations map[string]string) *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec: batchv1.CronJobSpec{
			Schedule: "0 3 * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       podSpec(),
			}}},
		},
	}
}

func barePod(ns, name string, labels, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: annotations},
		Spec:       podSpec(),
	}
}

// ownedByKind checks that every named policy is owned by exactly one
// reference of apiVersion, kind and uid.
func ownedByKind(ctx context.Context, cs kubernetes.Interface, ns string, names []string, apiVersion, kind string, uid types.UID) func() error {
	return func() error {
		for _, name := range names {
			p, err := cs.NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			refs := p.OwnerReferences
			if len(refs) != 1 || refs[0].APIVersion != apiVersion || refs[0].Kind != kind || refs[0].UID != uid {
				return fmt.Errorf("policy %s owner references %+v, want %s %s %s", name, refs, apiVersion, kind, uid)
			}
		}
		return nil
	}
}

var decisionsLine = regexp.MustCompile(`(?m)^netguard_admission_decisions_total\{([^}]*)\} (\S+)$`)

// resourceDecisions sums netguard_admission_decisions_total of the mutating
// workload webhook for one resource: every call it answered.
func resourceDecisions(t *testing.T, metrics func() (string, error), resource string) float64 {
	t.Helper()
	text, err := metrics()
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	var sum float64
	for _, m := range decisionsLine.FindAllStringSubmatch(text, -1) {
		if strings.Contains(m[1], `resource="`+resource+`"`) {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("metric value %q: %v", m[2], err)
			}
			sum += v
		}
	}
	return sum
}

func TestInjectionJobsCronJobsPods(t *testing.T) {
	ng := startNetguard(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ns := "kinds"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	tn := newTenant(t, ctx, ns)
	dbDeps := map[string]string{rules.AnnotationDependsOn: "db:5432"}

	t.Run("a Job gets its policies before it is stored, and its pods carry the label", func(t *testing.T) {
		j, err := tn.cs.BatchV1().Jobs(ns).Create(ctx, job(ns, "migrate", dbDeps), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := j.Spec.Template.Labels[rules.LabelComponent]; got != "migrate" {
			t.Errorf("pod template label %s=%q, want migrate", rules.LabelComponent, got)
		}
		names := []string{"netguard.migrate.depends-on", "netguard.migrate.to.db"}
		if err := wantNames(ctx, cs, ns, "Job/migrate", names...)(); err != nil {
			t.Fatalf("when the create returned: %v", err)
		}
		eventually(t, 30*time.Second, "owned by the Job", ownedByKind(ctx, cs, ns, names, "batch/v1", "Job", j.UID))
		// The job controller makes the pod from the labelled template.
		eventually(t, 60*time.Second, "the Job's pod", podsOf(ctx, cs, ns, "migrate", true))
	})

	t.Run("a CronJob gets its policies before it is stored, and its Jobs' pods carry the label", func(t *testing.T) {
		c, err := tn.cs.BatchV1().CronJobs(ns).Create(ctx, cronJob(ns, "backup", dbDeps), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Spec.JobTemplate.Spec.Template.Labels[rules.LabelComponent]; got != "backup" {
			t.Errorf("job template's pod template label %s=%q, want backup", rules.LabelComponent, got)
		}
		names := []string{"netguard.backup.depends-on", "netguard.backup.to.db"}
		if err := wantNames(ctx, cs, ns, "CronJob/backup", names...)(); err != nil {
			t.Fatalf("when the create returned: %v", err)
		}
		eventually(t, 30*time.Second, "owned by the CronJob", ownedByKind(ctx, cs, ns, names, "batch/v1", "CronJob", c.UID))
		// A Job made from the CronJob by hand, as `kubectl create job
		// --from=cronjob/backup` does: the tenant writes the label, and
		// the ownerReference names the component's owner.
		r := kubectl(t, ctx, tn.kube, "", "-n", ns, "create", "job", "backup-now", "--from=cronjob/backup")
		if r.err != nil {
			t.Fatalf("%s: %v\n%s", r.cmd, r.err, r.stderr)
		}
		eventually(t, 60*time.Second, "the Job's pod", podsOf(ctx, cs, ns, "backup", true))
	})

	t.Run("an annotated bare Pod gets its policies and its label", func(t *testing.T) {
		p, err := tn.cs.CoreV1().Pods(ns).Create(ctx, barePod(ns, "db", map[string]string{"app": "db"}, map[string]string{rules.AnnotationDependsOn: "cache:6379"}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Labels[rules.LabelComponent]; got != "db" || p.Labels["app"] != "db" {
			t.Errorf("pod labels %v, want app=db and %s=db", p.Labels, rules.LabelComponent)
		}
		names := []string{"netguard.db.depends-on", "netguard.db.to.cache"}
		if err := wantNames(ctx, cs, ns, "Pod/db", names...)(); err != nil {
			t.Fatalf("when the create returned: %v", err)
		}
		eventually(t, 30*time.Second, "owned by the Pod", ownedByKind(ctx, cs, ns, names, "v1", "Pod", p.UID))
	})

	t.Run("ordinary pods and the pods of a Deployment never reach netguard", func(t *testing.T) {
		before := resourceDecisions(t, ng.Metrics, "pods") + resourceDecisions(t, ng.Metrics, "replicasets")
		for i := range 20 {
			if _, err := tn.cs.CoreV1().Pods(ns).Create(ctx, barePod(ns, fmt.Sprintf("plain-%d", i), map[string]string{"app": "plain"}, nil), metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		d := webhooktest.Deployment(ns, "web", map[string]string{rules.AnnotationDependsOn: "db:5432"})
		three := int32(3)
		d.Spec.Replicas = &three
		if _, err := tn.cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, "the Deployment's 3 pods", func() error {
			pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: rules.LabelComponent + "=web"})
			if err != nil {
				return err
			}
			if len(pods.Items) != 3 {
				return fmt.Errorf("%d pods", len(pods.Items))
			}
			return nil
		})
		// Plain pods updated, as controllers and kubectl label do.
		if _, err := tn.cs.CoreV1().Pods(ns).Patch(ctx, "plain-0", types.MergePatchType, []byte(`{"metadata":{"labels":{"tier":"x"}}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		after := resourceDecisions(t, ng.Metrics, "pods") + resourceDecisions(t, ng.Metrics, "replicasets")
		if after != before {
			t.Errorf("netguard answered %v calls for pods and ReplicaSets; the match conditions must keep them all away", after-before)
		}
		// The counter does move for a pod the conditions send: the check
		// above could not pass by a metric that never moves.
		pods := resourceDecisions(t, ng.Metrics, "pods")
		if _, err := tn.cs.CoreV1().Pods(ns).Create(ctx, barePod(ns, "probe", nil, map[string]string{rules.AnnotationComponent: "probe"}), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := resourceDecisions(t, ng.Metrics, "pods"); got <= pods {
			t.Errorf("an annotated bare Pod did not reach netguard: pods decisions %v before, %v after", pods, got)
		}
	})

	t.Run("a hand-labelled pod, ReplicaSet-owned or not, is refused at enforce", func(t *testing.T) {
		label := map[string]string{rules.LabelComponent: "web"}
		_, err := tn.cs.CoreV1().Pods(ns).Create(ctx, barePod(ns, "impostor", label, nil), metav1.CreateOptions{})
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `metadata.labels[netguard.io/component]: Forbidden: component "web" is declared by Deployment/web in namespace "kinds", and only netguard sets this label`) {
			t.Fatalf("hand-labelled pod: got %v, want it refused", err)
		}
		// An ownerReference to web's real ReplicaSet, UID and all: the
		// tenant is not the replicaset controller.
		rss, err := cs.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: rules.LabelComponent + "=web"})
		if err != nil || len(rss.Items) == 0 {
			t.Fatalf("web's ReplicaSet: %v (%d)", err, len(rss.Items))
		}
		rs := rss.Items[0]
		forged := barePod(ns, "forged", label, nil)
		yes := true
		forged.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes}}
		if _, err := tn.cs.CoreV1().Pods(ns).Create(ctx, forged, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
			t.Errorf("pod with a forged ReplicaSet ownerReference: got %v, want it refused", err)
		}
		// Labelling a running plain pod afterwards.
		_, err = tn.cs.CoreV1().Pods(ns).Patch(ctx, "plain-1", types.MergePatchType, []byte(`{"metadata":{"labels":{"netguard.io/component":"web"}}}`), metav1.PatchOptions{})
		if !apierrors.IsInvalid(err) {
			t.Errorf("labelling a plain pod web: got %v, want it refused", err)
		}
		// The template of a Deployment without netguard annotations, and
		// a ReplicaSet written directly.
		d := webhooktest.Deployment(ns, "sneaky", nil)
		d.Spec.Template.Labels[rules.LabelComponent] = "web"
		if _, err := tn.cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.template.metadata.labels[netguard.io/component]") {
			t.Errorf("unannotated Deployment with web's label: got %v, want it refused", err)
		}
		rsObj := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "sneaky", Namespace: ns}, Spec: appsv1.ReplicaSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template}}
		if _, err := tn.cs.AppsV1().ReplicaSets(ns).Create(ctx, rsObj, metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
			t.Errorf("ReplicaSet with web's label: got %v, want it refused", err)
		}
		c := cronJob(ns, "sneaky", nil)
		c.Spec.JobTemplate.Spec.Template.Labels[rules.LabelComponent] = "web"
		if _, err := tn.cs.BatchV1().CronJobs(ns).Create(ctx, c, metav1.CreateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.jobTemplate.spec.template.metadata.labels[netguard.io/component]") {
			t.Errorf("unannotated CronJob with web's label: got %v, want it refused", err)
		}
		// A label nobody claims gives nothing and is left alone.
		if _, err := tn.cs.CoreV1().Pods(ns).Create(ctx, barePod(ns, "unclaimed", map[string]string{rules.LabelComponent: "nobody"}, nil), metav1.CreateOptions{}); err != nil {
			t.Errorf("pod labelled with an unclaimed component: %v", err)
		}
	})

	t.Run("deleting a Job, a CronJob or a Pod removes its policies", func(t *testing.T) {
		bg := metav1.DeletePropagationBackground
		if err := tn.cs.BatchV1().Jobs(ns).Delete(ctx, "migrate", metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
			t.Fatal(err)
		}
		if err := tn.cs.BatchV1().CronJobs(ns).Delete(ctx, "backup", metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
			t.Fatal(err)
		}
		if err := tn.cs.CoreV1().Pods(ns).Delete(ctx, "db", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 60*time.Second, "Job's policies gone", wantNames(ctx, cs, ns, "Job/migrate"))
		eventually(t, 60*time.Second, "CronJob's policies gone", wantNames(ctx, cs, ns, "CronJob/backup"))
		eventually(t, 60*time.Second, "Pod's policies gone", wantNames(ctx, cs, ns, "Pod/db"))
	})
}

// The controller covers the new kinds: it backfills a bare Pod and a
// CronJob written while netguard was away (label and policies), and keeps
// their policies true.
func TestBackfillJobsCronJobsPods(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := testCluster.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ns := "kinds-backfill"
	if err := testCluster.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	deps := map[string]string{rules.AnnotationDependsOn: "db:5432"}
	// Written before netguard runs: no webhook is registered.
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, barePod(ns, "agent", nil, deps), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.BatchV1().CronJobs(ns).Create(ctx, cronJob(ns, "report", deps), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	startNetguard(t, "--platform-groups=platform-admins")

	eventually(t, 60*time.Second, "the bare Pod backfilled", func() error {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, "agent", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Labels[rules.LabelComponent] != "agent" || p.Annotations[rules.AnnotationGenerated] == "" {
			return fmt.Errorf("pod labels %v, annotations %v", p.Labels, p.Annotations)
		}
		if err := wantNames(ctx, cs, ns, "Pod/agent", "netguard.agent.depends-on", "netguard.agent.to.db")(); err != nil {
			return err
		}
		return ownedByKind(ctx, cs, ns, []string{"netguard.agent.depends-on"}, "v1", "Pod", p.UID)()
	})
	eventually(t, 60*time.Second, "the CronJob backfilled", func() error {
		c, err := cs.BatchV1().CronJobs(ns).Get(ctx, "report", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.Spec.JobTemplate.Spec.Template.Labels[rules.LabelComponent] != "report" {
			return fmt.Errorf("job template labels %v", c.Spec.JobTemplate.Spec.Template.Labels)
		}
		return wantNames(ctx, cs, ns, "CronJob/report", "netguard.report.depends-on", "netguard.report.to.db")()
	})
	// Keep-true: a deleted policy comes back.
	// TestInjection may have created the binding already.
	out, err := testCluster.Kubectl(ctx, nil, "create", "clusterrolebinding", "platform-admins-edit", "--clusterrole=cluster-admin", "--group=platform-admins")
	if err != nil && !strings.Contains(out, "AlreadyExists") && !strings.Contains(out, "already exists") {
		t.Fatalf("%v: %s", err, out)
	}
	if out, err := testCluster.Kubectl(ctx, nil, "--as=platform-bot", "--as-group=platform-admins", "-n", ns, "delete", "networkpolicy", "netguard.agent.to.db"); err != nil {
		t.Fatalf("platform delete: %v: %s", err, out)
	}
	eventually(t, 60*time.Second, "the Pod's deleted policy restored", wantNames(ctx, cs, ns, "Pod/agent", "netguard.agent.depends-on", "netguard.agent.to.db"))
	// Removing the annotations from the Pod removes its policies.
	if _, err := cs.CoreV1().Pods(ns).Patch(ctx, "agent", types.MergePatchType, []byte(`{"metadata":{"annotations":{"netguard.io/depends-on":null}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the un-annotated Pod's policies removed", wantNames(ctx, cs, ns, "Pod/agent"))
}
