package chart

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	configv1alpha1 "github.com/netguard/netguard/api/config/v1alpha1"
	"github.com/netguard/netguard/webhook"
)

// clusterScoped are the kinds the chart renders without a namespace.
var clusterScoped = map[string]bool{
	"ClusterRole": true, "ClusterRoleBinding": true,
	"ValidatingWebhookConfiguration": true, "MutatingWebhookConfiguration": true,
}

// netguardConfiguration is the file `serve --config` reads; the rendered file
// is decoded strictly, as serve decodes it.
type netguardConfiguration = configv1alpha1.NetguardConfiguration

// serveClusterRules is what `netguard serve` needs cluster-wide, in every mode.
var serveClusterRules = []rbacv1.PolicyRule{
	{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets", "daemonsets"}, Verbs: []string{"get", "list", "watch", "patch"}},
	{APIGroups: []string{"batch"}, Resources: []string{"jobs", "cronjobs"}, Verbs: []string{"get", "list", "watch", "patch"}},
	{APIGroups: []string{"netguard.io"}, Resources: []string{"networkprofiles"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"netguard.io"}, Resources: []string{"networkprofiles/status"}, Verbs: []string{"update", "patch"}},
	{APIGroups: []string{"netguard.io"}, Resources: []string{"localnetworkconfigs"}, Verbs: []string{"get", "list", "watch"}},
	{APIGroups: []string{"netguard.io"}, Resources: []string{"localnetworkconfigs/status"}, Verbs: []string{"update", "patch"}},
	{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "patch"}},
	{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	{APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"selfsubjectreviews"}, Verbs: []string{"create"}},
	{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"validatingadmissionpolicies", "validatingadmissionpolicybindings"}, ResourceNames: webhook.AdmissionPolicyNames, Verbs: []string{"get", "create", "update", "patch"}},
	{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"validatingwebhookconfigurations"}, ResourceNames: []string{webhook.ValidatingConfigurationName}, Verbs: []string{"get", "patch"}},
}

var leaseRule = rbacv1.PolicyRule{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch"}}

func secretRules(name string) []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"create"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{name}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
	}
}

var caBundleRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"validatingwebhookconfigurations"}, ResourceNames: []string{"netguard-validating"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
	{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"}, ResourceNames: []string{"netguard-mutating"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
}

func TestPackagedChartHoldsNoGoFiles(t *testing.T) {
	ch := loadChart(t)
	for _, f := range ch.Raw {
		if strings.HasSuffix(f.Name, ".go") || strings.HasPrefix(f.Name, "testdata/") {
			t.Errorf("%s would be packaged; .helmignore must exclude it", f.Name)
		}
	}
	var crds []string
	for _, c := range ch.CRDObjects() {
		crds = append(crds, c.Filename)
	}
	if !slices.Contains(crds, "netguard/crds/netguard.io_networkprofiles.yaml") {
		t.Errorf("CRDs in the chart: %v; want the NetworkProfile CRD", crds)
	}
	if ch.Metadata.APIVersion != "v2" {
		t.Errorf("Chart.yaml apiVersion %q, want v2", ch.Metadata.APIVersion)
	}
}

func TestValueSets(t *testing.T) {
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			r := mustRender(t, vs)
			checkCommon(t, r)
			if r.Notes == "" {
				t.Error("NOTES.txt rendered empty")
			}
		})
	}
}

// checkCommon asserts what holds for every value set.
func checkCommon(t *testing.T, r *release) {
	t.Helper()
	for _, o := range r.Objects {
		want := r.Namespace
		if clusterScoped[o.GetKind()] {
			want = ""
		}
		if o.GetNamespace() != want {
			t.Errorf("%s %q: namespace %q, want %q", o.GetKind(), o.GetName(), o.GetNamespace(), want)
		}
		if o.GetLabels()["app.kubernetes.io/name"] != "netguard" {
			t.Errorf("%s %q: no app.kubernetes.io/name=netguard label", o.GetKind(), o.GetName())
		}
	}
	checkDeployment(t, r)
	checkService(t, r)
	checkValidatingWebhook(t, r)
}

func checkDeployment(t *testing.T, r *release) {
	t.Helper()
	d := get[appsv1.Deployment](t, r, "Deployment", "netguard")
	pod := d.Spec.Template.Spec
	if !reflect.DeepEqual(d.Spec.Selector.MatchLabels, map[string]string{"app.kubernetes.io/name": "netguard", "app.kubernetes.io/instance": r.Name}) {
		t.Errorf("selector %v", d.Spec.Selector.MatchLabels)
	}
	if pod.ServiceAccountName != "netguard" {
		t.Errorf("serviceAccountName %q", pod.ServiceAccountName)
	}
	if d.Spec.Strategy.RollingUpdate == nil || d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("rolling update must keep every serving replica until its replacement is ready: %+v", d.Spec.Strategy)
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext is not restricted: %+v", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Privileged == nil || *sc.Privileged ||
		sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("container securityContext is not restricted: %+v", sc)
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[res]; !ok {
			t.Errorf("no %s request", res)
		}
		if _, ok := c.Resources.Limits[res]; !ok {
			t.Errorf("no %s limit", res)
		}
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if !reflect.DeepEqual(ports, map[string]int32{"webhook": 9443, "metrics": 8080, "health": 8081}) {
		t.Errorf("container ports %v", ports)
	}
	for _, pr := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil || pr.probe.HTTPGet.Path != pr.path || pr.probe.HTTPGet.Port != intstr.FromString("health") {
			t.Errorf("%s probe %+v, want GET %s on port health (8081)", pr.name, pr.probe, pr.path)
		}
	}
	if !slices.Contains(c.Args, "--config=/etc/netguard/config/config.yaml") || c.Args[0] != "serve" {
		t.Errorf("args %v: want serve --config=/etc/netguard/config/config.yaml", c.Args)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	if m := mounts["config"]; m.MountPath != "/etc/netguard/config" || !m.ReadOnly {
		t.Errorf("config mount %+v", m)
	}
	if m := mounts["certs"]; "--cert-dir="+m.MountPath != argWithPrefix(c.Args, "--cert-dir=") {
		t.Errorf("certs mounted at %q but args say %q", m.MountPath, argWithPrefix(c.Args, "--cert-dir="))
	}
	var podNS *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == "POD_NAMESPACE" {
			podNS = &c.Env[i]
		}
	}
	if podNS == nil || podNS.ValueFrom == nil || podNS.ValueFrom.FieldRef == nil || podNS.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("POD_NAMESPACE must come from the downward API: %+v", podNS)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	if v := volumes["config"]; v.ConfigMap == nil || v.ConfigMap.Name != "netguard-config" {
		t.Errorf("config volume %+v", v)
	}
	// The ConfigMap holds a NetguardConfiguration that serve reads strictly.
	cm := get[corev1.ConfigMap](t, r, "ConfigMap", "netguard-config")
	cfg := readConfiguration(t, cm)
	if cfg.APIVersion != "netguard.io/v1alpha1" || cfg.Kind != "NetguardConfiguration" {
		t.Errorf("config apiVersion %q kind %q", cfg.APIVersion, cfg.Kind)
	}
	if got := cfg.Admission.MaxConcurrentEvaluations; got != 32 {
		t.Errorf("config admission.maxConcurrentEvaluations %d, want the default 32", got)
	}
	if d.Spec.Template.Annotations["checksum/config"] == "" {
		t.Error("no checksum/config annotation: a config change would not roll the pods")
	}
}

func readConfiguration(t *testing.T, cm *corev1.ConfigMap) netguardConfiguration {
	t.Helper()
	var cfg netguardConfiguration
	if err := yaml.UnmarshalStrict([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
		t.Fatalf("config.yaml: %v\n%s", err, cm.Data["config.yaml"])
	}
	return cfg
}

func argWithPrefix(args []string, prefix string) string {
	for _, a := range args {
		if strings.HasPrefix(a, prefix) {
			return a
		}
	}
	return ""
}

func checkService(t *testing.T, r *release) {
	t.Helper()
	s := get[corev1.Service](t, r, "Service", "netguard")
	d := get[appsv1.Deployment](t, r, "Deployment", "netguard")
	for k, v := range s.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pods", k, v)
		}
	}
	got := map[string][2]any{}
	for _, p := range s.Spec.Ports {
		got[p.Name] = [2]any{p.Port, p.TargetPort.String()}
	}
	want := map[string][2]any{"https-webhook": {int32(443), "webhook"}, "http-metrics": {int32(8080), "metrics"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Service ports %v, want %v", got, want)
	}
}

func checkValidatingWebhook(t *testing.T, r *release) {
	t.Helper()
	v := get[admissionregistrationv1.ValidatingWebhookConfiguration](t, r, "ValidatingWebhookConfiguration", "netguard-validating")
	m := get[admissionregistrationv1.MutatingWebhookConfiguration](t, r, "MutatingWebhookConfiguration", "netguard-mutating")
	if len(v.Webhooks) != 5 || len(m.Webhooks) != 4 {
		t.Fatalf("%d validating and %d mutating webhooks, want 5 and 4", len(v.Webhooks), len(m.Webhooks))
	}
	clients := map[string]admissionregistrationv1.WebhookClientConfig{
		"/validate-networkpolicy": v.Webhooks[0].ClientConfig,
		"/validate-workload":      v.Webhooks[1].ClientConfig,
		"/validate-namespace":     v.Webhooks[3].ClientConfig,
		"/mutate-workload":        m.Webhooks[0].ClientConfig,
	}
	for path, cc := range clients {
		if cc.Service == nil || cc.Service.Name != "netguard" || cc.Service.Namespace != r.Namespace || *cc.Service.Path != path || *cc.Service.Port != 443 {
			t.Errorf("clientConfig %+v, want the netguard Service on 443 at %s", cc.Service, path)
		}
	}
	for _, w := range v.Webhooks {
		if *w.TimeoutSeconds > 5 || *w.TimeoutSeconds < 1 {
			t.Errorf("%s: timeoutSeconds %d", w.Name, *w.TimeoutSeconds)
		}
	}
	if *v.Webhooks[1].FailurePolicy != admissionregistrationv1.Ignore || *v.Webhooks[2].FailurePolicy != admissionregistrationv1.Ignore || *m.Webhooks[0].FailurePolicy != admissionregistrationv1.Ignore {
		t.Error("injection must fail open in every value set")
	}
	// A netguard outage must never stop namespaces being created or
	// labelled, and deleting one must never reach netguard.
	ns := v.Webhooks[3]
	if *ns.FailurePolicy != admissionregistrationv1.Ignore || ns.NamespaceSelector != nil && len(ns.NamespaceSelector.MatchExpressions) > 0 ||
		len(ns.Rules) != 1 || slices.Contains(ns.Rules[0].Operations, admissionregistrationv1.Delete) {
		t.Errorf("namespace label webhook: failurePolicy %s, namespaceSelector %v, rules %+v; want Ignore, none, CREATE and UPDATE only", *ns.FailurePolicy, ns.NamespaceSelector, ns.Rules)
	}
}

func TestDefaults(t *testing.T) {
	r := mustRender(t, valueSetNamed(t, "defaults"))
	d := get[appsv1.Deployment](t, r, "Deployment", "netguard")
	if *d.Spec.Replicas != 2 {
		t.Errorf("replicas %d, want 2", *d.Spec.Replicas)
	}
	pdb := get[policyv1.PodDisruptionBudget](t, r, "PodDisruptionBudget", "netguard")
	if pdb.Spec.MinAvailable.IntValue() != 1 || !reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("PDB %+v", pdb.Spec)
	}
	tsc := d.Spec.Template.Spec.TopologySpreadConstraints
	if len(tsc) != 1 || tsc[0].TopologyKey != "kubernetes.io/hostname" || tsc[0].WhenUnsatisfiable != corev1.DoNotSchedule ||
		tsc[0].LabelSelector == nil || !reflect.DeepEqual(tsc[0].LabelSelector.MatchLabels, d.Spec.Selector.MatchLabels) {
		t.Errorf("topologySpreadConstraints %+v: want replicas spread over nodes", tsc)
	}
	c := d.Spec.Template.Spec.Containers[0]
	for _, a := range []string{"--leader-elect=true", "--leader-election-namespace=netguard-system", "--cert-mode=cert-manager", "--cert-dir=/etc/netguard/certs", "--webhook-port=9443", "--metrics-bind-address=:8080", "--health-probe-bind-address=:8081"} {
		if !slices.Contains(c.Args, a) {
			t.Errorf("args %v: missing %s", c.Args, a)
		}
	}
	if c.Image != "ghcr.io/netguard/netguard:0.1.0" || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image %q pullPolicy %q", c.Image, c.ImagePullPolicy)
	}
	if want := resource.MustParse("512Mi"); !c.Resources.Limits.Memory().Equal(want) {
		t.Errorf("memory limit %v", c.Resources.Limits.Memory())
	}

	// cert-manager: self-signed Issuer -> CA Certificate -> CA Issuer -> serving Certificate.
	selfSigned := r.find("Issuer", "netguard-selfsigned")
	ca := r.find("Certificate", "netguard-ca")
	caIssuer := r.find("Issuer", "netguard-ca")
	serving := r.find("Certificate", "netguard-serving")
	if selfSigned == nil || ca == nil || caIssuer == nil || serving == nil {
		t.Fatalf("cert-manager chain incomplete: %s", r.summary())
	}
	if _, ok := selfSigned.Object["spec"].(map[string]any)["selfSigned"]; !ok {
		t.Error("netguard-selfsigned is not a selfSigned Issuer")
	}
	expectField(t, ca, true, "spec", "isCA")
	expectField(t, ca, "netguard-selfsigned", "spec", "issuerRef", "name")
	expectField(t, caIssuer, "netguard-ca", "spec", "ca", "secretName")
	expectField(t, ca, "netguard-ca", "spec", "secretName")
	expectField(t, serving, "netguard-ca", "spec", "issuerRef", "name")
	expectField(t, serving, "Issuer", "spec", "issuerRef", "kind")
	expectField(t, serving, "netguard-serving-cert", "spec", "secretName")
	dns, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")
	if !reflect.DeepEqual(dns, []string{"netguard.netguard-system.svc", "netguard.netguard-system.svc.cluster.local"}) {
		t.Errorf("serving dnsNames %v", dns)
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "certs" && (v.Secret == nil || v.Secret.SecretName != "netguard-serving-cert") {
			t.Errorf("certs volume %+v: want the serving Certificate's Secret", v)
		}
	}
	for _, kind := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		for _, w := range r.ofKind(kind) {
			if got := w.GetAnnotations()["cert-manager.io/inject-ca-from"]; got != "netguard-system/netguard-serving" {
				t.Errorf("%s %s: inject-ca-from %q", kind, w.GetName(), got)
			}
		}
	}

	// RBAC: serve's cluster rules and the leader-election Lease; no Secret.
	cr := get[rbacv1.ClusterRole](t, r, "ClusterRole", "netguard")
	if !reflect.DeepEqual(cr.Rules, serveClusterRules) {
		t.Errorf("ClusterRole rules:\n%s\nwant:\n%s", toYAML(cr.Rules), toYAML(serveClusterRules))
	}
	role := get[rbacv1.Role](t, r, "Role", "netguard")
	if !reflect.DeepEqual(role.Rules, []rbacv1.PolicyRule{leaseRule}) {
		t.Errorf("Role rules:\n%s", toYAML(role.Rules))
	}
	if r.find("ClusterRole", "netguard-cabundle") != nil {
		t.Error("cert-manager mode must not let netguard write the caBundle of its webhook configurations")
	}
	crb := get[rbacv1.ClusterRoleBinding](t, r, "ClusterRoleBinding", "netguard")
	if crb.RoleRef.Name != "netguard" || len(crb.Subjects) != 1 || crb.Subjects[0].Name != "netguard" || crb.Subjects[0].Namespace != "netguard-system" {
		t.Errorf("ClusterRoleBinding %+v", crb)
	}
	if r.find("ServiceMonitor", "netguard") != nil {
		t.Error("ServiceMonitor rendered by default; the Prometheus Operator may not be installed")
	}

	// Config: the documented defaults.
	cfg := readConfiguration(t, get[corev1.ConfigMap](t, r, "ConfigMap", "netguard-config"))
	if cfg.Defaults.Enforce != "baseline" || cfg.Defaults.Audit != "restricted" || cfg.Defaults.Warn != "restricted" ||
		!reflect.DeepEqual(cfg.Exemptions.Namespaces, []string{"kube-system"}) {
		t.Errorf("default configuration %+v", cfg)
	}

	// netguard's own NetworkPolicy.
	np := get[networkingv1.NetworkPolicy](t, r, "NetworkPolicy", "netguard")
	if !reflect.DeepEqual(np.Spec.PodSelector.MatchLabels, d.Spec.Selector.MatchLabels) ||
		!reflect.DeepEqual(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
		t.Errorf("NetworkPolicy selects %v, types %v", np.Spec.PodSelector, np.Spec.PolicyTypes)
	}
	private := []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}
	if len(np.Spec.Ingress) != 2 {
		t.Fatalf("%d ingress rules, want webhook and metrics", len(np.Spec.Ingress))
	}
	if got := ipBlocks(np.Spec.Ingress[0].From); !reflect.DeepEqual(got, private) || np.Spec.Ingress[0].Ports[0].Port.String() != "webhook" {
		t.Errorf("webhook ingress from %v to %v", got, np.Spec.Ingress[0].Ports)
	}
	metrics := np.Spec.Ingress[1]
	if metrics.Ports[0].Port.String() != "metrics" || len(metrics.From) != 1 ||
		metrics.From[0].NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" ||
		metrics.From[0].PodSelector.MatchLabels["app.kubernetes.io/name"] != "prometheus" {
		t.Errorf("metrics ingress %+v", metrics)
	}
	if len(np.Spec.Egress) != 2 {
		t.Fatalf("%d egress rules, want API server and DNS", len(np.Spec.Egress))
	}
	if got := ipBlocks(np.Spec.Egress[0].To); !reflect.DeepEqual(got, private) || portsOf(np.Spec.Egress[0].Ports) != "TCP/443,TCP/6443" {
		t.Errorf("API server egress to %v ports %s", got, portsOf(np.Spec.Egress[0].Ports))
	}
	dnsRule := np.Spec.Egress[1]
	if dnsRule.To[0].PodSelector.MatchLabels["k8s-app"] != "kube-dns" || portsOf(dnsRule.Ports) != "UDP/53,TCP/53" {
		t.Errorf("DNS egress %+v", dnsRule)
	}
}

func TestSelfManagedCertificates(t *testing.T) {
	r := mustRender(t, valueSetNamed(t, "self-managed"))
	for _, o := range r.Objects {
		if strings.HasPrefix(o.GetAPIVersion(), "cert-manager.io/") {
			t.Errorf("%s %s rendered without cert-manager", o.GetKind(), o.GetName())
		}
		if _, ok := o.GetAnnotations()["cert-manager.io/inject-ca-from"]; ok {
			t.Errorf("%s %s carries inject-ca-from without cert-manager", o.GetKind(), o.GetName())
		}
	}
	d := get[appsv1.Deployment](t, r, "Deployment", "netguard")
	c := d.Spec.Template.Spec.Containers[0]
	for _, a := range []string{"--cert-mode=self-managed", "--cert-secret-name=netguard-webhook-tls", "--webhook-service-name=netguard", "--cert-dir=/var/run/netguard/certs", "--leader-elect=true"} {
		if !slices.Contains(c.Args, a) {
			t.Errorf("args %v: missing %s", c.Args, a)
		}
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == "certs" && v.EmptyDir == nil {
			t.Errorf("certs volume %+v: want an emptyDir that netguard fills from its Secret", v)
		}
	}
	for _, m := range c.VolumeMounts {
		if m.Name == "certs" && m.ReadOnly {
			t.Error("the self-managed cert dir must be writable")
		}
	}
	role := get[rbacv1.Role](t, r, "Role", "netguard")
	if want := append([]rbacv1.PolicyRule{leaseRule}, secretRules("netguard-webhook-tls")...); !reflect.DeepEqual(role.Rules, want) {
		t.Errorf("Role rules:\n%s\nwant:\n%s", toYAML(role.Rules), toYAML(want))
	}
	cab := get[rbacv1.ClusterRole](t, r, "ClusterRole", "netguard-cabundle")
	if !reflect.DeepEqual(cab.Rules, caBundleRules) {
		t.Errorf("caBundle ClusterRole rules:\n%s", toYAML(cab.Rules))
	}
	if r.find("ClusterRoleBinding", "netguard-cabundle") == nil || r.find("RoleBinding", "netguard") == nil {
		t.Errorf("bindings missing: %s", r.summary())
	}
	// The Rotator injects the caBundle; the chart must not pin one that an
	// upgrade would put back.
	for _, w := range get[admissionregistrationv1.ValidatingWebhookConfiguration](t, r, "ValidatingWebhookConfiguration", "netguard-validating").Webhooks {
		if len(w.ClientConfig.CABundle) != 0 {
			t.Error("rendered caBundle in self-managed mode")
		}
	}
	// A Secret name of the user's choice reaches both the flag and RBAC.
	r2, err := renderChart(t, "netguard", "netguard-system", "certManager: {enabled: false}\nselfManaged: {secretName: custom-tls}\n")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(get[appsv1.Deployment](t, r2, "Deployment", "netguard").Spec.Template.Spec.Containers[0].Args, "--cert-secret-name=custom-tls") ||
		!reflect.DeepEqual(get[rbacv1.Role](t, r2, "Role", "netguard").Rules[2].ResourceNames, []string{"custom-tls"}) {
		t.Error("selfManaged.secretName does not reach --cert-secret-name and the Role")
	}
}

func TestAuditOnlyRollout(t *testing.T) {
	r := mustRender(t, valueSetNamed(t, "audit-only"))
	cfg := readConfiguration(t, get[corev1.ConfigMap](t, r, "ConfigMap", "netguard-config"))
	if cfg.Defaults.Enforce != "privileged" || cfg.Defaults.Audit != "restricted" || cfg.Defaults.Warn != "restricted" {
		t.Errorf("defaults %+v", cfg.Defaults)
	}
	v := get[admissionregistrationv1.ValidatingWebhookConfiguration](t, r, "ValidatingWebhookConfiguration", "netguard-validating")
	if *v.Webhooks[0].FailurePolicy != admissionregistrationv1.Ignore {
		t.Errorf("failurePolicy %s, want Ignore while nothing is enforced", *v.Webhooks[0].FailurePolicy)
	}
	// Changing the configuration rolls the pods.
	def := mustRender(t, valueSetNamed(t, "defaults"))
	a := get[appsv1.Deployment](t, r, "Deployment", "netguard").Spec.Template.Annotations["checksum/config"]
	b := get[appsv1.Deployment](t, def, "Deployment", "netguard").Spec.Template.Annotations["checksum/config"]
	if a == b {
		t.Error("checksum/config did not change with the configuration")
	}
}

func TestSingleReplica(t *testing.T) {
	r := mustRender(t, valueSetNamed(t, "single-replica"))
	d := get[appsv1.Deployment](t, r, "Deployment", "netguard")
	if *d.Spec.Replicas != 1 {
		t.Errorf("replicas %d", *d.Spec.Replicas)
	}
	if r.find("PodDisruptionBudget", "netguard") != nil {
		t.Error("a PDB with one replica blocks every node drain")
	}
	args := d.Spec.Template.Spec.Containers[0].Args
	if !slices.Contains(args, "--leader-elect=false") || argWithPrefix(args, "--leader-election-namespace") != "" {
		t.Errorf("args %v: want --leader-elect=false and no election namespace", args)
	}
	if r.find("Role", "netguard") != nil {
		t.Error("no Lease and no Secret are needed: the Role should not be rendered")
	}
	// One replica keeps leader election on by default (a rolling update runs two pods).
	r2, err := renderChart(t, "netguard", "netguard-system", "replicaCount: 1\n")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(get[appsv1.Deployment](t, r2, "Deployment", "netguard").Spec.Template.Spec.Containers[0].Args, "--leader-elect=true") || r2.find("PodDisruptionBudget", "netguard") != nil {
		t.Error("replicaCount: 1 alone should keep leader election and drop the PDB")
	}
}

func TestTunedInstall(t *testing.T) {
	r := mustRender(t, valueSetNamed(t, "tuned"))
	d := get[appsv1.Deployment](t, r, "Deployment", "netguard")
	if *d.Spec.Replicas != 3 || r.find("PodDisruptionBudget", "netguard") == nil {
		t.Errorf("replicas %d, PDB %v", *d.Spec.Replicas, r.find("PodDisruptionBudget", "netguard") != nil)
	}
	if img := d.Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/netguard/netguard@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" {
		t.Errorf("image %q: a digest must win over the tag", img)
	}
	sm := r.find("ServiceMonitor", "netguard")
	if sm == nil {
		t.Fatalf("no ServiceMonitor: %s", r.summary())
	}
	if sm.GetLabels()["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor labels %v", sm.GetLabels())
	}
	eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
	if len(eps) != 1 || eps[0].(map[string]any)["port"] != "http-metrics" {
		t.Errorf("ServiceMonitor endpoints %v", eps)
	}
	// Your own issuer replaces the chart's CA.
	if r.find("Issuer", "netguard-selfsigned") != nil || r.find("Issuer", "netguard-ca") != nil || r.find("Certificate", "netguard-ca") != nil {
		t.Errorf("chart CA rendered although issuerRef is set: %s", r.summary())
	}
	serving := r.find("Certificate", "netguard-serving")
	expectField(t, serving, "corp-ca", "spec", "issuerRef", "name")
	expectField(t, serving, "ClusterIssuer", "spec", "issuerRef", "kind")
	for _, kind := range []string{"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} {
		u := r.ofKind(kind)[0]
		ws, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
		w := ws[0].(map[string]any)
		if w["timeoutSeconds"] != int64(3) {
			t.Errorf("%s timeoutSeconds %v", kind, w["timeoutSeconds"])
		}
		excluded := w["namespaceSelector"].(map[string]any)["matchExpressions"].([]any)[1].(map[string]any)["values"]
		if !reflect.DeepEqual(excluded, []any{"kube-system", "netguard-system", "tenant-sandbox"}) {
			t.Errorf("%s excludes %v", kind, excluded)
		}
	}
	np := get[networkingv1.NetworkPolicy](t, r, "NetworkPolicy", "netguard")
	if got := ipBlocks(np.Spec.Ingress[0].From); !reflect.DeepEqual(got, []string{"172.18.0.2/32", "fd00:10::/64"}) {
		t.Errorf("webhook ingress from %v", got)
	}
	if portsOf(np.Spec.Egress[0].Ports) != "TCP/6443" {
		t.Errorf("API server egress ports %s", portsOf(np.Spec.Egress[0].Ports))
	}
	if np.Spec.Ingress[1].From[0].PodSelector.MatchLabels["prometheus"] != "k8s" {
		t.Errorf("metrics ingress %+v", np.Spec.Ingress[1])
	}
	cfg := readConfiguration(t, get[corev1.ConfigMap](t, r, "ConfigMap", "netguard-config"))
	if !reflect.DeepEqual(cfg.Platform.Groups, []string{"platform-admins"}) || len(cfg.Exemptions.Usernames) != 1 {
		t.Errorf("configuration %+v", cfg)
	}
}

// TestInjectionWebhooks checks the parts of the injection webhooks the
// design depends on, in words a reviewer can check against docs/install.md.
// TestConfigurationsMatchGo compares every field with the Go description.
func TestInjectionWebhooks(t *testing.T) {
	r := mustRender(t, valueSetNamed(t, "defaults"))
	m := get[admissionregistrationv1.MutatingWebhookConfiguration](t, r, "MutatingWebhookConfiguration", "netguard-mutating")
	v := get[admissionregistrationv1.ValidatingWebhookConfiguration](t, r, "ValidatingWebhookConfiguration", "netguard-validating")
	if len(m.Webhooks) != 4 || len(v.Webhooks) != 5 {
		t.Fatalf("%d mutating and %d validating webhooks, want 4 and 5", len(m.Webhooks), len(v.Webhooks))
	}
	mw, vw, guard := m.Webhooks[0], v.Webhooks[1], v.Webhooks[0]
	if mw.Name != "workloads.netguard.io" || *mw.ClientConfig.Service.Path != "/mutate-workload" ||
		vw.Name != "workloads.netguard.io" || *vw.ClientConfig.Service.Path != "/validate-workload" {
		t.Errorf("webhooks %s at %s and %s at %s", mw.Name, *mw.ClientConfig.Service.Path, vw.Name, *vw.ClientConfig.Service.Path)
	}
	if *guard.FailurePolicy != admissionregistrationv1.Fail || *guard.SideEffects != admissionregistrationv1.SideEffectClassNone {
		t.Errorf("guardrails: failurePolicy %s sideEffects %s, want Fail and None", *guard.FailurePolicy, *guard.SideEffects)
	}
	if *mw.FailurePolicy != admissionregistrationv1.Ignore || *vw.FailurePolicy != admissionregistrationv1.Ignore ||
		*mw.SideEffects != admissionregistrationv1.SideEffectClassNoneOnDryRun || *vw.SideEffects != admissionregistrationv1.SideEffectClassNoneOnDryRun ||
		*mw.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
		t.Errorf("injection: failurePolicy %s/%s sideEffects %s/%s reinvocation %s", *mw.FailurePolicy, *vw.FailurePolicy, *mw.SideEffects, *vw.SideEffects, *mw.ReinvocationPolicy)
	}
	for _, w := range []struct {
		name     string
		timeout  int32
		match    admissionregistrationv1.MatchPolicyType
		versions []string
		selector *metav1.LabelSelector
	}{
		{"networkpolicies", *guard.TimeoutSeconds, *guard.MatchPolicy, guard.AdmissionReviewVersions, guard.NamespaceSelector},
		{"mutate workloads", *mw.TimeoutSeconds, *mw.MatchPolicy, mw.AdmissionReviewVersions, mw.NamespaceSelector},
		{"validate workloads", *vw.TimeoutSeconds, *vw.MatchPolicy, vw.AdmissionReviewVersions, vw.NamespaceSelector},
	} {
		if w.timeout != 5 || w.match != admissionregistrationv1.Equivalent || !reflect.DeepEqual(w.versions, []string{"v1"}) || !reflect.DeepEqual(w.selector, guard.NamespaceSelector) {
			t.Errorf("%s: timeout %d, matchPolicy %s, versions %v, namespaceSelector %v", w.name, w.timeout, w.match, w.versions, w.selector)
		}
	}
	rule := func(group string, resources ...string) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule: admissionregistrationv1.Rule{
				APIGroups: []string{group}, APIVersions: []string{"v1"},
				Resources: resources,
				Scope:     new(admissionregistrationv1.NamespacedScope),
			},
		}
	}
	want := map[string][]admissionregistrationv1.RuleWithOperations{
		"mutate workloads.netguard.io":   {rule("apps", "deployments", "statefulsets", "daemonsets"), rule("batch", "jobs")},
		"mutate cronjobs.netguard.io":    {rule("batch", "cronjobs")},
		"mutate replicasets.netguard.io": {rule("apps", "replicasets")},
		"mutate pods.netguard.io":        {rule("", "pods")},
		"validate workloads.netguard.io": {rule("apps", "deployments", "statefulsets", "daemonsets"), rule("batch", "jobs", "cronjobs")},
		"validate pods.netguard.io":      {rule("", "pods")},
	}
	got := map[string][]admissionregistrationv1.RuleWithOperations{}
	for _, w := range m.Webhooks {
		got["mutate "+w.Name] = w.Rules
		// Every annotated workload (any netguard.io/ key, so that a
		// misspelt one is seen and warned about) but a ReplicaSet, which
		// netguard only checks for the component label; every write of the
		// label. TestWebhooksReachOnlyWhatTheyShould and the e2e tests
		// prove them through an API server.
		if len(w.MatchConditions) != 1 || (w.Name != "replicasets.netguard.io" && !strings.Contains(w.MatchConditions[0].Expression, "k.startsWith('netguard.io/')")) ||
			!strings.Contains(w.MatchConditions[0].Expression, "'netguard.io/component' in object.") {
			t.Errorf("mutating %s: matchConditions %+v", w.Name, w.MatchConditions)
		}
		if *w.FailurePolicy != admissionregistrationv1.Ignore || *w.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy || *w.ClientConfig.Service.Path != "/mutate-workload" {
			t.Errorf("mutating %s: failurePolicy %s, reinvocation %s, path %s", w.Name, *w.FailurePolicy, *w.ReinvocationPolicy, *w.ClientConfig.Service.Path)
		}
	}
	for _, w := range v.Webhooks[1:3] {
		got["validate "+w.Name] = w.Rules
		if len(w.MatchConditions) != 1 || !strings.Contains(w.MatchConditions[0].Expression, "k.startsWith('netguard.io/')") {
			t.Errorf("validating %s: matchConditions %+v", w.Name, w.MatchConditions)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rules %s\nwant %s", toYAML(got), toYAML(want))
	}
	// injection.enabled=false keeps the guardrails and the namespace-label check only.
	r2, err := renderChart(t, "netguard", "netguard-system", "webhooks: {injection: {enabled: false}}\n")
	if err != nil {
		t.Fatal(err)
	}
	if r2.find("MutatingWebhookConfiguration", "netguard-mutating") != nil || len(r2.Objects) != len(r.Objects)-1 {
		t.Errorf("injection.enabled=false: %s", r2.summary())
	}
	v2 := get[admissionregistrationv1.ValidatingWebhookConfiguration](t, r2, "ValidatingWebhookConfiguration", "netguard-validating")
	if len(v2.Webhooks) != 2 || v2.Webhooks[0].Name != "networkpolicies.netguard.io" || v2.Webhooks[1].Name != "namespaces.netguard.io" {
		t.Errorf("injection.enabled=false: validating webhooks %v", v2.Webhooks)
	}
}

func expectField(t *testing.T, u *unstructured.Unstructured, want any, path ...string) {
	t.Helper()
	got, found, err := unstructured.NestedFieldNoCopy(u.Object, path...)
	if err != nil || !found || !reflect.DeepEqual(got, want) {
		t.Errorf("%s %s .%s = %v (found %v), want %v", u.GetKind(), u.GetName(), strings.Join(path, "."), got, found, want)
	}
}

func ipBlocks(peers []networkingv1.NetworkPolicyPeer) []string {
	var out []string
	for _, p := range peers {
		if p.IPBlock != nil {
			out = append(out, p.IPBlock.CIDR)
		}
	}
	return out
}

func portsOf(ports []networkingv1.NetworkPolicyPort) string {
	var out []string
	for _, p := range ports {
		out = append(out, string(*p.Protocol)+"/"+p.Port.String())
	}
	return strings.Join(out, ",")
}

func toYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// config.admission.maxConcurrentEvaluations reaches the file serve reads
// (admission.maxConcurrentEvaluations); its default is serve's.
func TestAdmissionConcurrencyValue(t *testing.T) {
	r := mustRender(t, valueSet{name: "concurrency", values: "config: {admission: {maxConcurrentEvaluations: 8}}"})
	if got := readConfiguration(t, get[corev1.ConfigMap](t, r, "ConfigMap", "netguard-config")).Admission.MaxConcurrentEvaluations; got != 8 {
		t.Errorf("admission.maxConcurrentEvaluations %d, want 8", got)
	}
	def := readConfiguration(t, get[corev1.ConfigMap](t, mustRender(t, valueSetNamed(t, "defaults")), "ConfigMap", "netguard-config"))
	if got := def.Admission.MaxConcurrentEvaluations; got != configv1alpha1.DefaultMaxConcurrentEvaluations {
		t.Errorf("default admission.maxConcurrentEvaluations %d, want serve's default %d", got, configv1alpha1.DefaultMaxConcurrentEvaluations)
	}
}

// config.crossNamespace reaches the file serve reads; by default consent is
// on at every level.
func TestCrossNamespaceValue(t *testing.T) {
	r := mustRender(t, valueSet{name: "cross-namespace", values: "config: {crossNamespace: {enabled: false, maxLevel: baseline}}"})
	got := readConfiguration(t, get[corev1.ConfigMap](t, r, "ConfigMap", "netguard-config")).CrossNamespace
	if got.Enabled == nil || *got.Enabled || got.MaxLevel != "baseline" {
		t.Errorf("crossNamespace %+v, want enabled false, maxLevel baseline", got)
	}
	def := readConfiguration(t, get[corev1.ConfigMap](t, mustRender(t, valueSetNamed(t, "defaults")), "ConfigMap", "netguard-config")).CrossNamespace
	if def.Enabled == nil || !*def.Enabled || def.MaxLevel != "managed" {
		t.Errorf("default crossNamespace %+v, want enabled at every level (managed)", def)
	}
}
