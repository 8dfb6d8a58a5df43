package rules

import (
	"net/netip"
	"slices"
	"strings"
)

// AddressSet is a set of IP addresses, as an ipBlock (cidr minus except)
// selects them. It is kept as sorted, merged ranges per family, so two
// spellings of the same addresses (0.0.0.0/0, or 0.0.0.0/1 plus 128.0.0.0/1)
// are the same set. IPv4-mapped IPv6 prefixes such as ::ffff:0:0/96 belong to
// the IPv6 family, as the API server parses them.
//
// The zero AddressSet is empty.
type AddressSet struct {
	v4, v6 []addrRange
}

// addrRange is an inclusive range of addresses of one family.
type addrRange struct{ from, to netip.Addr }

var (
	ipv4First = netip.AddrFrom4([4]byte{})
	ipv4Last  = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	ipv6First = netip.AddrFrom16([16]byte{})
	ipv6Last  = netip.AddrFrom16([16]byte{255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255})
)

// AllIPv4Addresses and AllIPv6Addresses are 0.0.0.0/0 and ::/0.
func AllIPv4Addresses() AddressSet { return AddressSet{v4: []addrRange{{ipv4First, ipv4Last}}} }
func AllIPv6Addresses() AddressSet { return AddressSet{v6: []addrRange{{ipv6First, ipv6Last}}} }

// AddressSetOf returns the addresses of a prefix; host bits are ignored, as
// the API server ignores them in an ipBlock.
func AddressSetOf(p netip.Prefix) AddressSet {
	if !p.IsValid() {
		return AddressSet{}
	}
	p = p.Masked()
	r := addrRange{p.Addr(), lastAddress(p)}
	if p.Addr().BitLen() == 32 {
		return AddressSet{v4: []addrRange{r}}
	}
	return AddressSet{v6: []addrRange{r}}
}

// lastAddress is the highest address of a masked prefix.
func lastAddress(p netip.Prefix) netip.Addr {
	a := p.Addr()
	bits := p.Bits()
	if a.BitLen() == 32 {
		b := a.As4()
		for i := bits; i < 32; i++ {
			b[i/8] |= 1 << (7 - i%8)
		}
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	for i := bits; i < 128; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	return netip.AddrFrom16(b)
}

// IsEmpty reports whether the set holds no address.
func (s AddressSet) IsEmpty() bool { return len(s.v4) == 0 && len(s.v6) == 0 }

// AllIPv4 reports whether the set holds every IPv4 address.
func (s AddressSet) AllIPv4() bool {
	return len(s.v4) == 1 && s.v4[0] == addrRange{ipv4First, ipv4Last}
}

// AllIPv6 reports whether the set holds every IPv6 address.
func (s AddressSet) AllIPv6() bool {
	return len(s.v6) == 1 && s.v6[0] == addrRange{ipv6First, ipv6Last}
}

// Union returns the addresses in s or o.
func (s AddressSet) Union(o AddressSet) AddressSet { return UnionAddressSets(s, o) }

// UnionAddressSets returns the addresses in any of the sets, merging once
// rather than pairwise.
func UnionAddressSets(sets ...AddressSet) AddressSet {
	var v4, v6 []addrRange
	for _, s := range sets {
		v4 = append(v4, s.v4...)
		v6 = append(v6, s.v6...)
	}
	return AddressSet{v4: mergeRanges(v4), v6: mergeRanges(v6)}
}

// Subtract returns the addresses in s and not in o.
func (s AddressSet) Subtract(o AddressSet) AddressSet {
	return AddressSet{v4: subtractRanges(s.v4, o.v4), v6: subtractRanges(s.v6, o.v6)}
}

// Contains reports whether every address of o is in s.
func (s AddressSet) Contains(o AddressSet) bool { return o.Subtract(s).IsEmpty() }

// Equal reports whether s and o hold the same addresses.
func (s AddressSet) Equal(o AddressSet) bool { return s.Contains(o) && o.Contains(s) }

// CIDRs returns the fewest prefixes that cover exactly the set, IPv4 first,
// in address order.
func (s AddressSet) CIDRs() []netip.Prefix {
	var out []netip.Prefix
	for _, r := range append(slices.Clone(s.v4), s.v6...) {
		out = append(out, rangePrefixes(r)...)
	}
	return out
}

// String lists the CIDRs, comma separated; "none" for the empty set.
func (s AddressSet) String() string {
	ps := s.CIDRs()
	if len(ps) == 0 {
		return "none"
	}
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.String()
	}
	return strings.Join(parts, ", ")
}

// mergeRanges sorts ranges of one family and merges overlapping and adjacent
// ones.
func mergeRanges(rs []addrRange) []addrRange {
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b addrRange) int { return a.from.Compare(b.from) })
	out := []addrRange{rs[0]}
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		// last.to.Next() is invalid at the end of the family; then r overlaps.
		next := last.to.Next()
		if !next.IsValid() || r.from.Compare(next) <= 0 {
			if r.to.Compare(last.to) > 0 {
				last.to = r.to
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// subtractRanges returns the parts of merged ranges a not in merged ranges
// b, in one pass over both.
func subtractRanges(a, b []addrRange) []addrRange {
	var out []addrRange
	j := 0
	for _, r := range a {
		from := r.from
		// Skip the ranges of b that end before r starts.
		for j < len(b) && b[j].to.Compare(from) < 0 {
			j++
		}
		k := j
		cut := false
		for ; k < len(b) && b[k].from.Compare(r.to) <= 0; k++ {
			if b[k].from.Compare(from) > 0 {
				out = append(out, addrRange{from, b[k].from.Prev()})
			}
			if b[k].to.Compare(r.to) >= 0 {
				cut = true // the rest of r is removed
				break
			}
			from = b[k].to.Next()
		}
		if !cut {
			out = append(out, addrRange{from, r.to})
		}
	}
	return out
}

// rangePrefixes splits an inclusive range into the fewest prefixes.
func rangePrefixes(r addrRange) []netip.Prefix {
	var out []netip.Prefix
	a := r.from
	maxBits := a.BitLen()
	for a.IsValid() && a.Compare(r.to) <= 0 {
		for bits := 0; bits <= maxBits; bits++ {
			p := netip.PrefixFrom(a, bits)
			if p.Masked().Addr() != a {
				continue
			}
			last := lastAddress(p)
			if last.Compare(r.to) > 0 {
				continue
			}
			out = append(out, p)
			a = last.Next() // invalid after the last address of the family
			break
		}
	}
	return out
}
