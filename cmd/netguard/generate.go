package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/netguard/netguard/rules"
)

// generateOptions are the flags of `netguard generate`.
type generateOptions struct {
	Filenames []string
	Baseline  bool
	dnsOptions
}

func (o *generateOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringArrayVarP(&o.Filenames, "filename", "f", nil, `manifest file or directory to read, "-" for stdin (repeatable)`)
	fs.BoolVar(&o.Baseline, "baseline", true, "also print netguard-default-deny and netguard-allow-dns for every namespace with an annotated workload")
	o.dnsOptions.addFlags(fs, "netguard-allow-dns")
}

// Validate checks the flags and returns the baseline options they mean.
func (o *generateOptions) Validate() (rules.BaselineOptions, error) {
	if len(o.Filenames) == 0 {
		return rules.BaselineOptions{}, usageError(`no input: pass -f FILE, -f DIRECTORY or -f - for stdin`)
	}
	return o.baseline()
}

// dnsOptions are the cluster DNS flags of generate and reach, which say
// whom the generated netguard-allow-dns policy lets pods reach.
type dnsOptions struct {
	DNSNamespace   string
	DNSPodSelector string
}

// addFlags adds --dns-namespace and --dns-pod-selector; policy names the
// policy they shape in the help text.
func (o *dnsOptions) addFlags(fs *pflag.FlagSet, policy string) {
	fs.StringVar(&o.DNSNamespace, "dns-namespace", "kube-system", "namespace of the cluster DNS pods, for "+policy)
	fs.StringVar(&o.DNSPodSelector, "dns-pod-selector", "k8s-app=kube-dns", "label selector of the cluster DNS pods, for "+policy)
}

// baseline checks the flags and returns the baseline options they mean.
func (o *dnsOptions) baseline() (rules.BaselineOptions, error) {
	if msgs := validation.IsDNS1123Label(o.DNSNamespace); len(msgs) > 0 {
		return rules.BaselineOptions{}, usageError("--dns-namespace %q is not a namespace name: %s", o.DNSNamespace, strings.Join(msgs, "; "))
	}
	sel, err := metav1.ParseToLabelSelector(o.DNSPodSelector)
	if err != nil {
		return rules.BaselineOptions{}, usageError("--dns-pod-selector %q: %v", o.DNSPodSelector, err)
	}
	return rules.BaselineOptions{DNS: rules.DNSOptions{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: o.DNSNamespace}},
		PodSelector:       sel,
	}}, nil
}

func init() {
	registerSubcommand("generate", func(streams ioStreams) *cobra.Command {
		o := &generateOptions{}
		cmd := &cobra.Command{
			Use:   "generate -f FILE...",
			Short: "Print the NetworkPolicies that annotated workloads declare",
			Long: `generate reads Deployments, StatefulSets and DaemonSets with netguard.io
annotations, and the NetworkProfiles they reference, and prints the
NetworkPolicies the webhook would create for them: the workloads' own
policies plus netguard-default-deny and netguard-allow-dns for each of their
namespaces. Output is YAML, one document per policy, sorted by namespace and
name, and the same for the same input.

Exit status: 0 when every annotation is valid, 1 when an annotation is wrong
or references a NetworkProfile the input does not hold (nothing is printed
then), 2 when the input cannot be read.`,
			Example: `  netguard generate -f deploy/ -f platform/profiles.yaml > networkpolicies.yaml
  kustomize build overlays/prod | netguard generate -f -`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				opts, err := o.Validate()
				if err != nil {
					return err
				}
				return runGenerate(cmd.Context(), streams, o.Filenames, opts, o.Baseline)
			},
		}
		o.AddFlags(cmd.Flags())
		return cmd
	})
}

func runGenerate(ctx context.Context, streams ioStreams, paths []string, opts rules.BaselineOptions, baseline bool) error {
	_, set, err := loadWorkloads(streams, paths)
	if err != nil {
		return err
	}
	policies, findings := set.generateAll(ctx, opts)
	if err := ctx.Err(); err != nil {
		return interrupted(err)
	}
	if printFindings(streams.ErrOut, findings) {
		return silentExit(1)
	}
	if !baseline {
		kept := policies[:0]
		for _, p := range policies {
			if p.Name != rules.DefaultDenyPolicyName && p.Name != rules.AllowDNSPolicyName {
				kept = append(kept, p)
			}
		}
		policies = kept
	}
	if len(policies) == 0 {
		fmt.Fprintln(streams.ErrOut, "netguard: no annotated workloads in the input; nothing to generate")
		return nil
	}
	out, err := policiesYAML(policies)
	if err != nil {
		return err
	}
	_, err = streams.Out.Write(out)
	return err
}

// policiesYAML renders policies as a multi-document YAML stream.
func policiesYAML(policies []*networkingv1.NetworkPolicy) ([]byte, error) {
	var buf bytes.Buffer
	for i, p := range policies {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := yaml.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("networkpolicy %q in namespace %q: %v", p.Name, p.Namespace, err)
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}
