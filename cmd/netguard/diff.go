package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/netguard/netguard/rules"
)

// diffOptions are the flags of `netguard diff`.
type diffOptions struct {
	Output    string
	Ports     []string
	Generated bool
	dnsOptions
}

func (o *diffOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&o.Output, "output", "o", "text", "output format: text, json, or markdown (for a pull-request comment)")
	fs.StringArrayVar(&o.Ports, "port", nil, "also try this port between every pair: NUMBER[/PROTOCOL] (repeatable); the destinations' container ports are always tried")
	fs.BoolVar(&o.Generated, "generated", true, "add the policies `netguard generate` would produce for annotated workloads on each side")
	o.dnsOptions.addFlags(fs, "the generated netguard-allow-dns")
}

func init() {
	registerSubcommand("diff", func(streams ioStreams) *cobra.Command {
		o := &diffOptions{}
		cmd := &cobra.Command{
			Use:   "diff OLD NEW [-o text|json|markdown] [--port PORT]...",
			Short: "Show the connections that open and close between two sets of manifests",
			Long: `diff evaluates two sets of manifests, as reach --matrix does, and lists the
connections between their pods and workloads that the change opens and
closes, per source, destination, port and protocol. OLD and NEW are each a
file, a directory or "-" (stdin, for one of them), such as the output of
kubectl get -o yaml. The policies netguard generates for annotated workloads
are included on each side (--generated), so a change of a netguard.io/
annotation or of a NetworkProfile shows up as the connections it changes.

Each pair is tried on the destination's container ports (on either side) and
on every --port. A workload that exists on one side only has all of its
connections opened or closed.

Exit status: 0 when nothing opens, 1 when connectivity widened (a connection
opens, a new workload's included), 2 on bad input.`,
			Example: `  netguard diff main/deploy/ deploy/
  kubectl get deploy,sts,ds,netpol,ns,networkprofiles -A -o yaml | netguard diff - deploy/ -o markdown`,
			Args: cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				opts, ports, err := o.validate(args)
				if err != nil {
					return err
				}
				return runDiff(streams, o, opts, ports, args[0], args[1])
			},
		}
		o.AddFlags(cmd.Flags())
		return cmd
	})
}

func (o *diffOptions) validate(args []string) (rules.BaselineOptions, []rules.Port, error) {
	switch o.Output {
	case "text", "json", "markdown":
	default:
		return rules.BaselineOptions{}, nil, usageError("--output %q is not supported; use text, json or markdown", o.Output)
	}
	if args[0] == "-" && args[1] == "-" {
		return rules.BaselineOptions{}, nil, usageError(`only one of OLD and NEW can be "-" (stdin)`)
	}
	var ports []rules.Port
	for _, s := range o.Ports {
		p, err := rules.ParsePort(s)
		if err != nil {
			return rules.BaselineOptions{}, nil, usageError("--port %q: %v", s, err)
		}
		ports = append(ports, p)
	}
	opts, err := o.baseline()
	return opts, ports, err
}

// diffEndpoint is a pod or workload on either side.
type diffEndpoint struct {
	Name string `json:"name"` // namespace/name
	Kind string `json:"kind"`
	// Side is "old" or "new" for an endpoint on one side only, "" for both.
	Side string `json:"side,omitempty"`
}

func (e diffEndpoint) String() string {
	s := e.Name
	if e.Kind != "Pod" && e.Kind != "" {
		s = e.Name + " (" + e.Kind + ")"
	}
	if e.Side != "" {
		s += " [" + e.Side + " only]"
	}
	return s
}

// diffChange is the ports of one source and destination that opened or closed.
type diffChange struct {
	From  diffEndpoint `json:"from"`
	To    diffEndpoint `json:"to"`
	Ports []string     `json:"ports"`
}

// diffReport is the output of diff; its JSON form is documented in
// docs/diff.md.
type diffReport struct {
	Old     string       `json:"old"`
	New     string       `json:"new"`
	Widened bool         `json:"widened"`
	Opened  []diffChange `json:"opened"`
	Closed  []diffChange `json:"closed"`
	// Connections counts the opened and closed source, destination and
	// port triples.
	OpenedCount int `json:"openedCount"`
	ClosedCount int `json:"closedCount"`
}

type diffSide struct {
	ev  *rules.Evaluator
	eps map[string]reachEndpoint // by namespace/kind/name
}

func loadDiffSide(streams ioStreams, path string, generated bool, opts rules.BaselineOptions) (diffSide, error) {
	in, err := loadReachInput(streams, []string{path}, generated, opts)
	if err != nil {
		return diffSide{}, err
	}
	ev, err := rules.NewEvaluator(in.policies)
	if err != nil {
		return diffSide{}, usageError("%s: %v", path, err)
	}
	s := diffSide{ev: ev, eps: map[string]reachEndpoint{}}
	for _, e := range in.endpoints {
		s.eps[e.Namespace+"/"+e.kind+"/"+e.Name] = e
	}
	return s, nil
}

func runDiff(streams ioStreams, o *diffOptions, opts rules.BaselineOptions, extra []rules.Port, oldPath, newPath string) error {
	oldSide, err := loadDiffSide(streams, oldPath, o.Generated, opts)
	if err != nil {
		return err
	}
	newSide, err := loadDiffSide(streams, newPath, o.Generated, opts)
	if err != nil {
		return err
	}
	report := diffConnectivity(oldSide, newSide, extra)
	report.Old, report.New = oldPath, newPath
	switch o.Output {
	case "json":
		err = writeJSON(streams.Out, report)
	case "markdown":
		err = report.writeMarkdown(streams.Out)
	default:
		err = report.writeText(streams.Out)
	}
	if err != nil {
		return err
	}
	if report.Widened {
		return silentExit(1)
	}
	return nil
}

// diffConnectivity tries every ordered pair of endpoints of either side on
// the destination's container ports of both sides and on extra.
func diffConnectivity(oldSide, newSide diffSide, extra []rules.Port) diffReport {
	keys := map[string]bool{}
	for k := range oldSide.eps {
		keys[k] = true
	}
	for k := range newSide.eps {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)

	endpoint := func(k string) diffEndpoint {
		o, inOld := oldSide.eps[k]
		n, inNew := newSide.eps[k]
		e := n
		if !inNew {
			e = o
		}
		d := diffEndpoint{Name: e.Namespace + "/" + e.Name, Kind: e.kind}
		switch {
		case !inOld:
			d.Side = "new"
		case !inNew:
			d.Side = "old"
		}
		return d
	}
	report := diffReport{Opened: []diffChange{}, Closed: []diffChange{}}
	for _, fk := range sorted {
		for _, tk := range sorted {
			ports := diffPorts(oldSide.eps[tk], newSide.eps[tk], extra)
			var opened, closed []string
			for _, p := range ports {
				was := diffAllowed(oldSide, fk, tk, p)
				is := diffAllowed(newSide, fk, tk, p)
				switch {
				case is && !was:
					opened = append(opened, p.String())
				case was && !is:
					closed = append(closed, p.String())
				}
			}
			if len(opened) > 0 {
				report.Opened = append(report.Opened, diffChange{From: endpoint(fk), To: endpoint(tk), Ports: opened})
				report.OpenedCount += len(opened)
			}
			if len(closed) > 0 {
				report.Closed = append(report.Closed, diffChange{From: endpoint(fk), To: endpoint(tk), Ports: closed})
				report.ClosedCount += len(closed)
			}
		}
	}
	report.Widened = report.OpenedCount > 0
	return report
}

// diffAllowed says whether from may reach to on p on one side; false when
// either endpoint is not on that side.
func diffAllowed(s diffSide, fromKey, toKey string, p rules.Port) bool {
	from, ok := s.eps[fromKey]
	if !ok {
		return false
	}
	to, ok := s.eps[toKey]
	if !ok {
		return false
	}
	return s.ev.Reach(from.Endpoint, to.Endpoint, p).Allowed
}

// diffPorts is the union of a destination's container ports on both sides
// and extra, sorted by protocol and number.
func diffPorts(old, new reachEndpoint, extra []rules.Port) []rules.Port {
	seen := map[rules.Port]bool{}
	var out []rules.Port
	add := func(p rules.Port) {
		if p.Protocol == "" {
			p.Protocol = "TCP"
		}
		if p.Number < 1 || seen[p] {
			return
		}
		seen[p] = true
		out = append(out, p)
	}
	for _, e := range []reachEndpoint{old, new} {
		for _, cp := range e.Ports {
			add(rules.Port{Number: cp.ContainerPort, Protocol: cp.Protocol})
		}
	}
	for _, p := range extra {
		add(p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Protocol != out[j].Protocol {
			return out[i].Protocol < out[j].Protocol
		}
		return out[i].Number < out[j].Number
	})
	return out
}

func (r diffReport) summary() string {
	verdict := "connectivity did not widen"
	if r.Widened {
		verdict = "connectivity widened"
	}
	return fmt.Sprintf("%s opened, %s closed: %s", plural(r.OpenedCount, "connection", "connections"), plural(r.ClosedCount, "connection", "connections"), verdict)
}

func (r diffReport) writeText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s -> %s: %s\n", r.Old, r.New, r.summary())
	section := func(title string, cs []diffChange) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s:\n", title)
		last := ""
		for _, c := range cs {
			if from := c.From.String(); from != last {
				fmt.Fprintf(&b, "  %s\n", from)
				last = from
			}
			fmt.Fprintf(&b, "    -> %s: %s\n", c.To, strings.Join(c.Ports, ", "))
		}
	}
	section("Opened", r.Opened)
	section("Closed", r.Closed)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeMarkdown writes a pull-request comment: a summary line and a table
// per direction of change.
func (r diffReport) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	icon := ":white_check_mark:"
	if r.Widened {
		icon = ":warning:"
	}
	fmt.Fprintf(&b, "### netguard diff\n\n%s %s (`%s` → `%s`)\n", icon, upperFirst(r.summary()), mdCode(r.Old), mdCode(r.New))
	table := func(title string, cs []diffChange) {
		if len(cs) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n#### %s\n\n| From | To | Ports |\n| --- | --- | --- |\n", title)
		for _, c := range cs {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", mdCell(c.From.String()), mdCell(c.To.String()), mdCell(strings.Join(c.Ports, ", ")))
		}
	}
	table("Opened", r.Opened)
	table("Closed", r.Closed)
	b.WriteString("\nAsk why with `netguard reach --from SOURCE --to DESTINATION --port PORT --explain`.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func mdCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
func mdCode(s string) string { return strings.ReplaceAll(s, "`", "'") }
