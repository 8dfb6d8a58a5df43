// Command soak is `make soak`: netguard under a bounded, mixed load on a
// local control plane for a while, sampling its memory and goroutines. It
// fails when either grows: the average of the last third of the samples
// against the first third, after a warm-up.
//
// The load, all over loopback: NetworkPolicies through the API server (good
// ones, denied ones, edits of managed ones), annotated Deployments created,
// changed and deleted, namespaces created and deleted, and AdmissionReviews
// straight to the webhook port (good ones and bad input, including bodies
// over the size limit).
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/netguard/netguard/e2e/cluster"
	"github.com/netguard/netguard/rules"
	"github.com/netguard/netguard/webhook"
)

type options struct {
	binary, assets, crds string
	duration, interval   time.Duration
	warmup               time.Duration
	rssGrowth, grGrowth  float64
	rate                 float64
}

func main() {
	var o options
	flag.StringVar(&o.binary, "netguard", "bin/netguard", "netguard binary to run")
	flag.StringVar(&o.assets, "assets", "bin/k8s", "directory with etcd, kube-apiserver, kube-controller-manager and kubectl")
	flag.StringVar(&o.crds, "crds", "charts/netguard/crds", "CRDs to install")
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the load runs, warm-up included")
	flag.DurationVar(&o.interval, "interval", 10*time.Second, "time between two samples")
	flag.DurationVar(&o.warmup, "warmup", 0, "load before the first sample counts (default: a sixth of -duration, at most 1m)")
	flag.Float64Var(&o.rssGrowth, "max-rss-growth", 0.25, "fail when the last third's average RSS exceeds the first third's by more than this fraction")
	flag.Float64Var(&o.grGrowth, "max-goroutine-growth", 0.20, "fail when the last third's average goroutine count exceeds the first third's by more than this fraction")
	flag.Float64Var(&o.rate, "rate", 1, "scale of the load; 1 is about 10 API writes and 20 direct reviews a second")
	flag.Parse()
	if o.warmup == 0 {
		o.warmup = min(o.duration/6, time.Minute)
	}
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "make soak: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.duration < 3*o.interval+o.warmup {
		return fmt.Errorf("-duration %s leaves fewer than three samples after a warm-up of %s at -interval %s", o.duration, o.warmup, o.interval)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	fmt.Fprintln(os.Stderr, "starting etcd, kube-apiserver and kube-controller-manager ...")
	c, err := cluster.Start(ctx, cluster.Options{AssetsDir: abs(o.assets), CRDDirs: []string{abs(o.crds)}, ControllerManager: true})
	if err != nil {
		return err
	}
	defer func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "make soak: stop the control plane:", err)
		}
	}()
	logPath := filepath.Join(os.TempDir(), fmt.Sprintf("netguard-soak-%d.log", os.Getpid()))
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	fmt.Fprintln(os.Stderr, "starting netguard serve; its log:", logPath)
	ng, err := c.StartNetguard(ctx, cluster.NetguardOptions{Binary: abs(o.binary), Log: logFile, Args: []string{"--platform-groups=platform-admins"}})
	if err != nil {
		return err
	}
	defer func() {
		if err := ng.Stop(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "make soak: stop netguard:", err)
		}
	}()
	// client-go's default 5 requests a second would be the bottleneck.
	cfg := rest.CopyConfig(c.Config)
	cfg.QPS, cfg.Burst = 100, 200
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ng.CABundle)
	l := &load{cs: cs, url: ng.WebhookURL, client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true,
	}}}
	for i := range 3 {
		ns := fmt.Sprintf("soak-%d", i)
		labels := map[string]string{rules.LabelEnforce: []string{"baseline", "restricted", "baseline"}[i]}
		if err := c.EnsureNamespace(ctx, ns, labels); err != nil {
			return err
		}
		l.namespaces = append(l.namespaces, ns)
	}

	loadCtx, stopLoad := context.WithTimeout(ctx, o.duration)
	defer stopLoad()
	var wg sync.WaitGroup
	every := func(period time.Duration, f func(context.Context, int)) {
		period = time.Duration(float64(period) / o.rate)
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(period)
			defer t.Stop()
			for i := 0; ; i++ {
				select {
				case <-loadCtx.Done():
					return
				case <-t.C:
				}
				f(loadCtx, i)
			}
		}()
	}
	every(250*time.Millisecond, l.policies)
	every(500*time.Millisecond, l.workloads)
	every(5*time.Second, l.namespaceChurn)
	every(2*time.Second, l.managedEdits)
	every(50*time.Millisecond, l.direct)

	fmt.Printf("soak: %s of load, samples every %s after a warm-up of %s; netguard pid %d\n\n", o.duration, o.interval, o.warmup, ng.PID())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "elapsed\tRSS MiB\tgoroutines\tAPI ops\tdirect reviews\tunexpected\terrors\t")
	tw.Flush()
	start := time.Now()
	var samples []sample
	next := time.NewTimer(o.warmup)
	defer next.Stop()
	for done := false; !done; {
		select {
		case <-loadCtx.Done():
			done = true
			continue
		case <-next.C:
			next.Reset(o.interval)
		}
		if ng.Exited() {
			stopLoad()
			wg.Wait()
			return fmt.Errorf("netguard exited during the soak; see %s", logPath)
		}
		s, err := takeSample(ng)
		if err != nil {
			return err
		}
		samples = append(samples, s)
		fmt.Fprintf(tw, "%s\t%.1f\t%d\t%d\t%d\t%d\t%d\t\n", time.Since(start).Round(time.Second), float64(s.rssKiB)/1024, s.goroutines,
			l.apiOps.Load(), l.directOps.Load(), l.unexpected.Load(), l.errs.Load())
		tw.Flush()
	}
	stopLoad()
	wg.Wait()
	return verdict(o, samples, l)
}

type sample struct {
	rssKiB     int64
	goroutines int64
}

// takeSample reads netguard's resident memory from /proc and its goroutine
// count from /metrics.
func takeSample(ng *cluster.Netguard) (sample, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", ng.PID()))
	if err != nil {
		return sample{}, err
	}
	defer f.Close()
	var s sample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			s.rssKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	text, err := ng.Metrics()
	if err != nil {
		return sample{}, err
	}
	m := regexp.MustCompile(`(?m)^go_goroutines (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return sample{}, errors.New("no go_goroutines in netguard's /metrics")
	}
	g, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return sample{}, err
	}
	s.goroutines = int64(g)
	if s.rssKiB == 0 {
		return sample{}, errors.New("no VmRSS in /proc/PID/status")
	}
	return s, nil
}

// verdict compares the first and last thirds of the samples.
func verdict(o options, samples []sample, l *load) error {
	if len(samples) < 3 {
		return fmt.Errorf("only %d samples; run longer", len(samples))
	}
	third := len(samples) / 3
	avg := func(ss []sample, f func(sample) int64) float64 {
		var sum int64
		for _, s := range ss {
			sum += f(s)
		}
		return float64(sum) / float64(len(ss))
	}
	rss := func(s sample) int64 { return s.rssKiB }
	gr := func(s sample) int64 { return s.goroutines }
	first, last := samples[:third], samples[len(samples)-third:]
	rssFirst, rssLast := avg(first, rss)/1024, avg(last, rss)/1024
	grFirst, grLast := avg(first, gr), avg(last, gr)
	fmt.Printf("\nRSS: first third %.1f MiB, last third %.1f MiB (%+.1f%%, limit %+.0f%%)\n", rssFirst, rssLast, 100*(rssLast/rssFirst-1), 100*o.rssGrowth)
	fmt.Printf("goroutines: first third %.1f, last third %.1f (%+.1f%%, limit %+.0f%%)\n", grFirst, grLast, 100*(grLast/grFirst-1), 100*o.grGrowth)
	fmt.Printf("load: %d API operations, %d direct reviews, %d unexpected verdicts, %d other errors\n", l.apiOps.Load(), l.directOps.Load(), l.unexpected.Load(), l.errs.Load())
	if p := l.firstErr.Load(); p != nil {
		fmt.Printf("first other error (not counted against netguard): %.300s\n", *p)
	}
	var errs []error
	if rssLast > rssFirst*(1+o.rssGrowth) {
		errs = append(errs, fmt.Errorf("RSS grew from %.1f to %.1f MiB", rssFirst, rssLast))
	}
	if grLast > grFirst*(1+o.grGrowth) {
		errs = append(errs, fmt.Errorf("goroutines grew from %.1f to %.1f", grFirst, grLast))
	}
	if n := l.unexpected.Load(); n > 0 {
		first := ""
		if p := l.firstUnexpected.Load(); p != nil {
			first = *p
		}
		errs = append(errs, fmt.Errorf("%d verdicts were not what the load expected; first: %s", n, first))
	}
	if l.apiOps.Load() == 0 || l.directOps.Load() == 0 {
		errs = append(errs, errors.New("the load did not run"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Println("soak: flat")
	return nil
}

// load is the mixed load. Errors that say nothing about netguard (a
// conflict, a timeout on a busy machine) are counted; a verdict netguard
// should not have given is unexpected and fails the soak.
type load struct {
	cs              kubernetes.Interface
	url             string
	client          *http.Client
	namespaces      []string
	apiOps          atomic.Int64
	directOps       atomic.Int64
	unexpected      atomic.Int64
	errs            atomic.Int64
	firstUnexpected atomic.Pointer[string]
	firstErr        atomic.Pointer[string]
	seq             atomic.Int64
}

// error counts an error that says nothing about netguard and keeps the
// first for the summary.
func (l *load) error(err error) {
	if l.errs.Add(1) == 1 {
		msg := err.Error()
		l.firstErr.Store(&msg)
	}
}

func (l *load) fail(format string, args ...any) {
	if l.unexpected.Add(1) == 1 {
		msg := fmt.Sprintf(format, args...)
		l.firstUnexpected.Store(&msg)
	}
}

func (l *load) ns(i int) string { return l.namespaces[i%len(l.namespaces)] }

func port(n int32) *intstr.IntOrString { p := intstr.FromInt32(n); return &p }

func goodPolicy(name string) *networkingv1.NetworkPolicy {
	tcp := corev1.ProtocolTCP
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "backend"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "frontend"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: port(8080)}},
			}},
		},
	}
}

// policies creates a good policy (then deletes it) or a bad one (denied).
func (l *load) policies(ctx context.Context, i int) {
	ns := l.ns(i)
	api := l.cs.NetworkingV1().NetworkPolicies(ns)
	name := fmt.Sprintf("soak-%d", l.seq.Add(1))
	l.apiOps.Add(1)
	if i%2 == 0 {
		if _, err := api.Create(ctx, goodPolicy(name), metav1.CreateOptions{}); err != nil {
			l.apiErr(ctx, err, "a good policy was refused: %v", err)
			return
		}
		l.apiOps.Add(1)
		if err := api.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			l.apiErr(ctx, err, "deleting a policy: %v", err)
		}
		return
	}
	bad := goodPolicy(name)
	bad.Spec.Ingress[0].From = []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}}}
	_, err := api.Create(ctx, bad, metav1.CreateOptions{})
	switch {
	case err == nil:
		l.fail("a policy from 0.0.0.0/0 was admitted in %s", ns)
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "[ingressFromIPBlock]"):
	default:
		l.apiErr(ctx, err, "a bad policy: %v", err)
	}
}

// apiErr counts an error from the API server; a denial by netguard where
// none was expected is unexpected.
func (l *load) apiErr(ctx context.Context, err error, format string, args ...any) {
	if ctx.Err() != nil {
		return // the soak is ending
	}
	if strings.Contains(err.Error(), "denied the request") {
		l.fail(format, args...)
		return
	}
	l.error(err)
}

// workloads creates an annotated Deployment, changes what it depends on,
// and deletes it, checking its generated policies on the way.
func (l *load) workloads(ctx context.Context, i int) {
	ns := l.ns(i)
	api := l.cs.AppsV1().Deployments(ns)
	name := fmt.Sprintf("w%d", i%8)
	l.apiOps.Add(1)
	d, err := api.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		zero := int32(0)
		labels := map[string]string{"app": name}
		d = &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{rules.AnnotationDependsOn: "api:8080"}},
			Spec: appsv1.DeploymentSpec{
				Replicas: &zero,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
				},
			},
		}
		created, err := api.Create(ctx, d, metav1.CreateOptions{})
		if err != nil {
			l.apiErr(ctx, err, "creating a Deployment: %v", err)
			return
		}
		if created.Spec.Template.Labels[rules.LabelComponent] != name {
			l.fail("Deployment %s/%s was not mutated: %v", ns, name, created.Spec.Template.Labels)
		}
	case err != nil:
		l.apiErr(ctx, err, "reading a Deployment: %v", err)
	case rand.IntN(3) == 0:
		if err := api.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			l.apiErr(ctx, err, "deleting a Deployment: %v", err)
		}
	default:
		d.Annotations[rules.AnnotationDependsOn] = []string{"api:8080", "api:8080 db:5432", "cache:6379/tcp"}[rand.IntN(3)]
		if _, err := api.Update(ctx, d, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
			l.apiErr(ctx, err, "updating a Deployment: %v", err)
		}
	}
}

// namespaceChurn creates a namespace and deletes the one before, so that
// netguard's namespace baseline and its caches see namespaces come and go.
func (l *load) namespaceChurn(ctx context.Context, i int) {
	nsAPI := l.cs.CoreV1().Namespaces()
	l.apiOps.Add(2)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("soak-churn-%d", i)}}
	if _, err := nsAPI.Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		l.apiErr(ctx, err, "creating a namespace: %v", err)
	}
	if i > 0 {
		if err := nsAPI.Delete(ctx, fmt.Sprintf("soak-churn-%d", i-1), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			l.apiErr(ctx, err, "deleting a namespace: %v", err)
		}
	}
}

// managedEdits tries to weaken a namespace's default-deny as an ordinary
// user: always denied.
func (l *load) managedEdits(ctx context.Context, i int) {
	ns := l.ns(i)
	l.apiOps.Add(1)
	patch := []byte(`{"spec":{"policyTypes":["Ingress"]}}`)
	_, err := l.cs.NetworkingV1().NetworkPolicies(ns).Patch(ctx, rules.DefaultDenyPolicyName, types.MergePatchType, patch, metav1.PatchOptions{})
	// As admin (system:masters) but not netguard or a platform identity.
	switch {
	case err == nil:
		l.fail("the default-deny of %s was changed by an ordinary user", ns)
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "is managed by netguard"), apierrors.IsNotFound(err):
	default:
		l.apiErr(ctx, err, "editing a managed policy: %v", err)
	}
}

var huge = bytes.Repeat([]byte("x"), webhook.MaxRequestBytes+1)

// direct sends an AdmissionReview straight to the webhook port: mostly good
// ones, and every tenth a piece of bad input.
func (l *load) direct(ctx context.Context, i int) {
	l.directOps.Add(1)
	uid := fmt.Sprintf("soak-%d", i)
	np := goodPolicy("direct")
	ns := l.ns(i)
	np.Namespace = ns
	raw, _ := json.Marshal(np)
	review, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID(uid), Namespace: ns, Name: "direct", Operation: admissionv1.Create,
			Kind:     metav1.GroupVersionKind{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"},
			Resource: metav1.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies"},
			UserInfo: authenticationv1.UserInfo{Username: "soak", Groups: []string{"system:authenticated"}},
			Object:   runtime.RawExtension{Raw: raw},
		},
	})
	body, want := review, "allowed"
	switch i % 10 {
	case 3:
		body, want = review[:len(review)/2], "400"
	case 6:
		body, want = []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"kind":{"kind":"Pod"},"uid":"`+uid+`"}}`), "400"
	case 9:
		if i%100 == 9 {
			body, want = huge, "413"
		}
	}
	resp, err := l.client.Post(l.url+webhook.PathValidateNetworkPolicy, "application/json", bytes.NewReader(body))
	if err != nil {
		if ctx.Err() == nil {
			l.error(err)
		}
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if want == "413" {
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			l.fail("a body over the limit got HTTP %d", resp.StatusCode)
		}
		return
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(out, &ar); err != nil || ar.Response == nil {
		l.fail("not an AdmissionReview: %.200s", out)
		return
	}
	switch want {
	case "allowed":
		if !ar.Response.Allowed || string(ar.Response.UID) != uid {
			l.fail("a good direct review: allowed=%v uid %q result %+v", ar.Response.Allowed, ar.Response.UID, ar.Response.Result)
		}
	case "400":
		if ar.Response.Allowed || ar.Response.Result == nil || ar.Response.Result.Code != 400 {
			l.fail("bad input got %.200s", out)
		}
	}
}
