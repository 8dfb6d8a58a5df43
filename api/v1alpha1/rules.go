package v1alpha1

import "github.com/netguard/netguard/rules"

// ToRulesProfile converts the profile for the generator. The rules are deep
// copies: changing the result leaves p alone.
func (p *NetworkProfile) ToRulesProfile() rules.Profile {
	out := rules.Profile{Name: p.Name, Description: p.Spec.Description, NamespaceSelector: p.Spec.NamespaceSelector.DeepCopy()}
	for i := range p.Spec.Ingress {
		out.Ingress = append(out.Ingress, *p.Spec.Ingress[i].DeepCopy())
	}
	for i := range p.Spec.Egress {
		out.Egress = append(out.Egress, *p.Spec.Egress[i].DeepCopy())
	}
	return out
}
