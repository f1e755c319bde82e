package urlpolicy

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseHosts parses the value of GIT_ALLOWED_HOSTS: host patterns separated by commas or
// spaces, each an exact host name or IP address, or "*.suffix". It returns them lower-cased, or
// an error naming the first malformed one.
func ParseHosts(s string) ([]string, error) {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	var hosts []string
	for _, f := range fields {
		h := strings.TrimSuffix(strings.ToLower(f), ".")
		name := strings.TrimPrefix(h, "*.")
		if _, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil && name == h {
			hosts = append(hosts, canonicalHost(name))
			continue
		}
		if !validName(name) || numericLike(name) {
			return nil, fmt.Errorf("%s: %q is not a host name, an IP address or *.domain", EnvAllowedHosts, f)
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// HostAllowed reports whether host matches one of the patterns: an exact name or address, or
// "*.suffix" for names below suffix. Case, a trailing dot and the spelling of an IP address do not
// matter.
func HostAllowed(patterns []string, host string) bool {
	host = canonicalHost(host)
	for _, pat := range patterns {
		pat = strings.ToLower(strings.TrimSpace(pat))
		if suffix, ok := strings.CutPrefix(pat, "*."); ok {
			suffix = strings.TrimSuffix(suffix, ".")
			if suffix != "" && strings.HasSuffix(host, "."+suffix) {
				return true
			}
			continue
		}
		if pat != "" && canonicalHost(pat) == host {
			return true
		}
	}
	return false
}

func canonicalHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String()
	}
	return h
}
