package main

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/netguard/netguard/rules"
)

// reachOptions are the flags of `netguard reach`.
type reachOptions struct {
	Filenames []string
	From, To  string
	Port      string
	Matrix    bool
	Generated bool
	Explain   bool   // reach_explain.go
	Output    string // text or json
	dnsOptions
}

func (o *reachOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&o.Filenames, "filename", "f", nil, `manifest file or directory to read, "-" for stdin (repeatable)`)
	fs.StringVar(&o.From, "from", "", "source: NAMESPACE/NAME of a pod or workload in the input (NAMESPACE/KIND/NAME when a name is ambiguous), or an IP address outside the pod network")
	fs.StringVar(&o.To, "to", "", "destination, in the same forms as --from")
	fs.StringVar(&o.Port, "port", "", "destination port: NUMBER or NAME (a container port of the destination), optionally /TCP, /UDP or /SCTP")
	fs.BoolVar(&o.Matrix, "matrix", false, "print the connectivity between every pair of pods and workloads in the input instead of one answer")
	fs.BoolVar(&o.Generated, "generated", true, "add the policies netguard generate would produce for annotated workloads in the input (--generated=false to leave them out)")
	o.dnsOptions.addFlags(fs, "the generated netguard-allow-dns")
	o.addExplainFlags(fs)
}

func (o *reachOptions) Validate() (rules.BaselineOptions, error) {
	if len(o.Filenames) == 0 {
		return rules.BaselineOptions{}, usageError(`no input: pass -f FILE, -f DIRECTORY or -f - for stdin`)
	}
	if !o.Matrix {
		var missing []string
		for flag, v := range map[string]string{"--from": o.From, "--to": o.To, "--port": o.Port} {
			if v == "" {
				missing = append(missing, flag)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			return rules.BaselineOptions{}, usageError("%s required (or use --matrix)", strings.Join(missing, ", "))
		}
	} else if o.From != "" || o.To != "" {
		return rules.BaselineOptions{}, usageError("--matrix shows every pair; leave out --from and --to")
	}
	if err := o.validateExplain(); err != nil {
		return rules.BaselineOptions{}, err
	}
	return o.baseline()
}

func init() {
	registerSubcommand("reach", func(streams ioStreams) *cobra.Command {
		o := &reachOptions{}
		cmd := &cobra.Command{
			Use:   "reach -f FILE... --from NS/NAME --to NS/NAME --port PORT[/PROTOCOL] | --matrix",
			Short: "Tell whether one pod may connect to another under the NetworkPolicies in the input",
			Long: `reach evaluates the NetworkPolicies in the input, plus the ones netguard would
generate for annotated workloads (--generated), and tells whether a
connection is allowed and which policies decided it.

A NAME is a Pod in the input or a Deployment, StatefulSet, DaemonSet, Job or
CronJob, which stands for its pods: the pod template's labels (with
netguard.io/component added, as the webhook does; for an annotated bare Pod,
its own labels) and container ports. Namespace labels come from
Namespace objects in the input; every namespace has kubernetes.io/metadata.name.
An IP address stands for a peer outside the pod network, matched by ipBlock.

Exit status: 0 allowed, 1 denied, 2 bad input. With --matrix, 0 unless the
input is bad.`,
			Example: `  netguard reach -f deploy/ --from shop/web --to shop/api --port 8080
  netguard reach -f deploy/ --from shop/web --to 203.0.113.10 --port 443
  netguard reach -f deploy/ --from shop/web --to shop/api --port 8080 --explain
  netguard reach -f deploy/ --matrix`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				opts, err := o.Validate()
				if err != nil {
					return err
				}
				return runReach(streams, o, opts)
			},
		}
		o.AddFlags(cmd.Flags())
		return cmd
	})
}

// reachInput is the input of reach: endpoints and policies.
type reachInput struct {
	endpoints []reachEndpoint
	policies  []*networkingv1.NetworkPolicy
}

type reachEndpoint struct {
	kind string // "Pod", "Deployment", ...
	rules.Endpoint
}

func runReach(streams ioStreams, o *reachOptions, opts rules.BaselineOptions) error {
	in, err := loadReachInput(streams, o.Filenames, o.Generated, opts)
	if err != nil {
		return err
	}
	ev, err := rules.NewEvaluator(in.policies)
	if err != nil {
		return usageError("%v", err)
	}
	if o.Matrix {
		return printMatrix(streams, ev, in, o.Port)
	}
	from, err := in.find(o.From, "--from")
	if err != nil {
		return err
	}
	to, err := in.find(o.To, "--to")
	if err != nil {
		return err
	}
	port, err := parseReachPort(o.Port, to)
	if err != nil {
		return err
	}
	v := ev.Reach(from, to, port)
	if o.Explain || o.Output == "json" {
		if err := printExplanation(streams, o, ev.Explain(from, to, port)); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(streams.Out, "%s -> %s on %s: %s\n", from, to, port, v.Reason())
	}
	if !v.Allowed {
		return silentExit(1)
	}
	return nil
}

func loadReachInput(streams ioStreams, paths []string, generated bool, opts rules.BaselineOptions) (reachInput, error) {
	ms, set, err := loadWorkloads(streams, paths)
	if err != nil {
		return reachInput{}, err
	}
	var in reachInput
	nsLabels := map[string]map[string]string{}
	for _, m := range ms {
		if ns, ok := m.Object.(*corev1.Namespace); ok {
			nsLabels[ns.Name] = ns.Labels
		}
	}
	input := map[string]bool{}
	for _, m := range ms {
		switch o := m.Object.(type) {
		case *networkingv1.NetworkPolicy:
			p := o.DeepCopy()
			if p.Namespace == "" {
				p.Namespace = metav1.NamespaceDefault
			}
			input[p.Namespace+"/"+p.Name] = true
			in.policies = append(in.policies, p)
		case *corev1.Pod:
			if _, ok := rules.WorkloadFromObject(o); ok {
				continue // a bare Pod: a workload, below
			}
			ns := o.Namespace
			if ns == "" {
				ns = metav1.NamespaceDefault
			}
			in.endpoints = append(in.endpoints, reachEndpoint{kind: "Pod", Endpoint: rules.Endpoint{
				Namespace: ns, Name: o.Name, Labels: o.Labels, NamespaceLabels: nsLabels[ns],
				IP: o.Status.PodIP, Ports: podPorts(&o.Spec),
			}})
		}
	}
	for _, w := range set.workloads {
		tmpl, spec, ok := rules.PodTemplate(w.Object)
		if !ok {
			continue
		}
		var ip string
		if pod, ok := w.Object.(*corev1.Pod); ok {
			ip = pod.Status.PodIP
		}
		labels := map[string]string{}
		for k, v := range tmpl.Labels {
			labels[k] = v
		}
		if rules.IsAnnotated(w.Annotations) {
			if ann, _, errs := rules.ParseAnnotations(w.Name, w.Annotations, nil); len(errs) == 0 {
				labels[rules.LabelComponent] = ann.Component
			}
		}
		in.endpoints = append(in.endpoints, reachEndpoint{kind: w.Kind, Endpoint: rules.Endpoint{
			Namespace: w.Namespace, Name: w.Name, Labels: labels, NamespaceLabels: nsLabels[w.Namespace],
			IP: ip, Ports: podPorts(spec),
		}})
	}
	sort.SliceStable(in.endpoints, func(i, j int) bool {
		a, b := in.endpoints[i], in.endpoints[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	if generated {
		policies, findings := set.generateAll(context.Background(), opts) // reach evaluates no policy: nothing to stop
		if printFindings(streams.ErrOut, findings) {
			return reachInput{}, silentExit(2)
		}
		for _, p := range policies {
			// A policy of the same name in the input is what the cluster
			// has (perhaps an earlier `generate`); it wins.
			if !input[p.Namespace+"/"+p.Name] {
				in.policies = append(in.policies, p)
			}
		}
	}
	return in, nil
}

// podPorts lists the ports of the containers and of sidecar (restartable
// init) containers, which serve like containers do.
func podPorts(spec *corev1.PodSpec) []corev1.ContainerPort {
	var out []corev1.ContainerPort
	for _, c := range spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			out = append(out, c.Ports...)
		}
	}
	for _, c := range spec.Containers {
		out = append(out, c.Ports...)
	}
	return out
}

// find resolves a --from or --to value.
func (in reachInput) find(ref, flag string) (rules.Endpoint, error) {
	if addr, err := netip.ParseAddr(ref); err == nil {
		return rules.ExternalEndpoint(addr.String()), nil
	}
	parts := strings.Split(ref, "/")
	var ns, kind, name string
	switch len(parts) {
	case 2:
		ns, name = parts[0], parts[1]
	case 3:
		ns, kind, name = parts[0], parts[1], parts[2]
	default:
		return rules.Endpoint{}, usageError("%s %q: write NAMESPACE/NAME, NAMESPACE/KIND/NAME or an IP address", flag, ref)
	}
	var found []reachEndpoint
	for _, e := range in.endpoints {
		if e.Namespace == ns && e.Name == name && (kind == "" || strings.EqualFold(kind, e.kind)) {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 1:
		return found[0].Endpoint, nil
	case 0:
		what := "pod or workload"
		if kind != "" {
			what = kind
		}
		return rules.Endpoint{}, usageError("%s %q: no %s %q in namespace %q in the input", flag, ref, what, name, ns)
	default:
		var kinds []string
		for _, e := range found {
			kinds = append(kinds, fmt.Sprintf("%s/%s/%s", ns, strings.ToLower(e.kind), name))
		}
		sort.Strings(kinds)
		return rules.Endpoint{}, usageError("%s %q is ambiguous: write one of %s", flag, ref, strings.Join(kinds, ", "))
	}
}

// parseReachPort reads NUMBER[/PROTOCOL] or NAME[/PROTOCOL]; a name is
// resolved at the destination's container ports.
func parseReachPort(s string, to rules.Endpoint) (rules.Port, error) {
	name, proto, _ := strings.Cut(s, "/")
	if name != "" && (name[0] < '0' || name[0] > '9') {
		p, err := rules.ParsePort("1/" + proto)
		if proto == "" {
			p, err = rules.Port{Number: 1, Protocol: corev1.ProtocolTCP}, nil
		}
		if err != nil {
			return rules.Port{}, usageError("--port %q: %v", s, err)
		}
		if to.External {
			return rules.Port{}, usageError("--port %q: a port name needs a pod as destination", s)
		}
		resolved, ok := rules.ResolvePort(to, name, p.Protocol)
		if !ok {
			return rules.Port{}, usageError("--port %q: %s has no %s container port named %q", s, to, p.Protocol, name)
		}
		return resolved, nil
	}
	p, err := rules.ParsePort(s)
	if err != nil {
		return rules.Port{}, usageError("--port %q: %v", s, err)
	}
	return p, nil
}

func printMatrix(streams ioStreams, ev *rules.Evaluator, in reachInput, portFlag string) error {
	var ports []rules.Port
	title := "Allowed ports from each row to each column, tried on the destination's container ports"
	if portFlag != "" {
		p, err := rules.ParsePort(portFlag)
		if err != nil {
			return usageError("--port %q: %v (with --matrix, give a number)", portFlag, err)
		}
		ports = []rules.Port{p}
		title = "Connectivity on " + p.String() + " from each row to each column"
	}
	eps := make([]rules.Endpoint, len(in.endpoints))
	for i, e := range in.endpoints {
		eps[i] = e.Endpoint
	}
	if len(eps) == 0 {
		return usageError("no pods or workloads in the input")
	}
	fmt.Fprintf(streams.Out, "%s (%d policies):\n\n", title, len(in.policies))
	return ev.Matrix(eps, ports).Write(streams.Out)
}
