package webhook

import (
	netguardv1alpha1 "github.com/netguard/netguard/api/v1alpha1"
	"github.com/netguard/netguard/rules"
)

// The CRD types know nothing of the engine (api/ imports no netguard
// package); their users convert them here, next to the handlers and
// controllers that call the generator.

// ProfileToRules converts a NetworkProfile for the generator. The rules are
// deep copies: changing the result leaves p alone.
func ProfileToRules(p *netguardv1alpha1.NetworkProfile) rules.Profile {
	out := rules.Profile{Name: p.Name, Description: p.Spec.Description, NamespaceSelector: p.Spec.NamespaceSelector.DeepCopy()}
	for i := range p.Spec.Ingress {
		out.Ingress = append(out.Ingress, *p.Spec.Ingress[i].DeepCopy())
	}
	for i := range p.Spec.Egress {
		out.Egress = append(out.Egress, *p.Spec.Egress[i].DeepCopy())
	}
	return out
}

// LocalConfigToRules converts a LocalNetworkConfig for the generator.
// Selectors are deep copies; nsLabels may be nil.
func LocalConfigToRules(l *netguardv1alpha1.LocalNetworkConfig, nsLabels map[string]string) rules.LocalConfig {
	out := rules.LocalConfig{Namespace: l.Namespace, Name: l.Name, UID: l.UID, Created: l.CreationTimestamp.Time, NamespaceLabels: nsLabels}
	for name, c := range l.Spec.Components {
		lc := rules.LocalComponent{Name: name, PodSelector: c.PodSelector.DeepCopy()}
		for _, e := range c.ExposeTo {
			re := rules.LocalExposure{NamespaceSelector: e.NamespaceSelector.DeepCopy()}
			for _, p := range e.Ports {
				rp := rules.LocalExposedPort{Port: p.Port, Protocol: p.Protocol}
				if p.EndPort != nil {
					end := *p.EndPort
					rp.EndPort = &end
				}
				re.Ports = append(re.Ports, rp)
			}
			lc.ExposeTo = append(lc.ExposeTo, re)
		}
		for _, d := range c.DependsOn {
			rd := rules.LocalDependency{Component: d.Component, Namespace: d.Namespace, Protocol: d.Protocol, NetworkProfile: d.NetworkProfile}
			if d.Port != nil {
				p := *d.Port
				rd.Port = &p
			}
			lc.DependsOn = append(lc.DependsOn, rd)
		}
		out.Components = append(out.Components, lc)
	}
	return out
}
