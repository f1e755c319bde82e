package urlpolicy

import (
	"net/netip"
	"strings"
)

// addrRange is a block of addresses a repository server may not have unless private networks
// are allowed, with the words that name it in an error message.
type addrRange struct {
	prefix netip.Prefix
	what   string
}

// specialRanges lists the blocks net/netip has no predicate for. It is built on each call so the
// package holds no mutable state; it is a handful of parses per dial.
func specialRanges() []addrRange {
	return []addrRange{
		{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\" (0.0.0.0/8)"},
		{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT (100.64.0.0/10)"},
		{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol (192.0.0.0/24)"},
		{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking (198.18.0.0/15)"},
		{netip.MustParsePrefix("240.0.0.0/4"), "reserved (240.0.0.0/4)"},
		{netip.MustParsePrefix("fec0::/10"), "site-local (fec0::/10)"},
	}
}

// Refused reports why a server at address a is refused when private networks are not allowed:
// "" for a public unicast address, otherwise a short description such as "loopback". IPv4
// addresses hidden in IPv6 ones (IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96, 6to4
// 2002::/16) are judged by the IPv4 address they carry.
func Refused(a netip.Addr) string {
	if !a.IsValid() {
		return "invalid"
	}
	a = a.WithZone("")
	if v4, how, ok := embeddedIPv4(a); ok {
		if why := Refused(v4); why != "" {
			return why + " (" + v4.String() + " " + how + ")"
		}
		return ""
	}
	a = a.Unmap()
	switch {
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a == netip.AddrFrom4([4]byte{169, 254, 169, 254}) || a == netip.MustParseAddr("fd00:ec2::254"):
		return "cloud metadata"
	case a.IsPrivate():
		return "private"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return "multicast"
	case a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "broadcast"
	}
	for _, r := range specialRanges() {
		if r.prefix.Contains(a) {
			return r.what
		}
	}
	return ""
}

// embeddedIPv4 returns the IPv4 address an IPv6 address carries by a translation scheme other
// than IPv4-mapping (which Unmap handles).
func embeddedIPv4(a netip.Addr) (netip.Addr, string, bool) {
	if !a.Is6() || a.Is4In6() {
		return netip.Addr{}, "", false
	}
	b := a.As16()
	var v4 [4]byte
	switch {
	case netip.MustParsePrefix("64:ff9b::/96").Contains(a):
		copy(v4[:], b[12:])
		return netip.AddrFrom4(v4), "in a NAT64 address", true
	case netip.MustParsePrefix("2002::/16").Contains(a):
		copy(v4[:], b[2:6])
		return netip.AddrFrom4(v4), "in a 6to4 address", true
	case netip.MustParsePrefix("::/96").Contains(a) && !a.IsUnspecified() && !a.IsLoopback():
		copy(v4[:], b[12:])
		return netip.AddrFrom4(v4), "in an IPv4-compatible address", true
	}
	return netip.Addr{}, "", false
}

// localName reports whether a host name (lower-case, without a trailing dot) names this machine
// or a cloud metadata service rather than a server on the internet.
func localName(host string) bool {
	switch host {
	case "localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback",
		"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal":
		return true
	}
	return strings.HasSuffix(host, ".localhost")
}

// numericLike reports whether host looks like an IPv4 address in a form other than canonical
// dotted decimal: "2130706433", "0x7f.1", "0177.0.0.1", "127.1". C resolvers (inet_aton) turn
// these into addresses, so they are refused outright rather than guessed at. A real DNS name never
// has an all-numeric last label.
func numericLike(host string) bool {
	labels := strings.Split(host, ".")
	last := labels[len(labels)-1]
	if last == "" {
		return false
	}
	if strings.HasPrefix(last, "0x") {
		return true
	}
	for i := 0; i < len(last); i++ {
		if last[i] < '0' || last[i] > '9' {
			return false
		}
	}
	return true
}
