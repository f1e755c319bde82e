package urlpolicy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/backendim/brain/proto"
)

func FuzzCheck(f *testing.F) {
	for _, seed := range []string{
		"https://github.com/org/app.git", "http://127.0.0.1:8080/x.git", "https://[::ffff:7f00:1]/a",
		"https://2130706433/", "https://0x7f.1/", "file:///etc/passwd", "/srv/repo", "git@github.com:o/r.git",
		"ssh://git@host/r", "https://user:pass@host/r", "https://[fe80::1%25lo]/", "https://localhost./",
		"https://a.b.example.com:443/x?y#z", "HTTPS://EXAMPLE.COM", "https:host", "https://[64:ff9b::a00:1]/",
	} {
		f.Add(seed, uint8(0))
	}
	f.Fuzz(func(t *testing.T, raw string, flags uint8) {
		p := Policy{AllowHTTP: flags&1 != 0, AllowPrivateNetworks: flags&2 != 0, AllowSSH: flags&4 != 0}
		if flags&8 != 0 {
			p.AllowedHosts = []string{"github.com", "*.example.com"}
		}
		u, err := p.Check(raw)
		if err != nil {
			var pe *proto.Error
			if !errors.As(err, &pe) || pe.Code != proto.CodeURLRefused || pe.Message == "" {
				t.Fatalf("Check(%q) error %v is not a url_refused *proto.Error with a message", raw, err)
			}
			return
		}
		switch u.Scheme {
		case "https":
		case "http":
			if !p.AllowHTTP {
				t.Fatalf("Check(%q) accepted http without AllowHTTP", raw)
			}
		case "ssh":
			if !p.AllowSSH {
				t.Fatalf("Check(%q) accepted ssh without AllowSSH", raw)
			}
		case "file":
			if !p.AllowPrivateNetworks || u.Host != "" || !strings.HasPrefix(u.Path, "/") {
				t.Fatalf("Check(%q) accepted %s", raw, u)
			}
			return
		default:
			t.Fatalf("Check(%q) accepted scheme %q", raw, u.Scheme)
		}
		if _, hasPass := u.User.Password(); hasPass || (u.User != nil && u.Scheme != "ssh") {
			t.Fatalf("Check(%q) accepted user information", raw)
		}
		host := strings.TrimSuffix(u.Hostname(), ".")
		if host == "" {
			t.Fatalf("Check(%q) accepted a URL without host", raw)
		}
		if a, err := netip.ParseAddr(host); err == nil && Refused(a) != "" && !p.AllowPrivateNetworks {
			t.Fatalf("Check(%q) accepted %s address %s", raw, Refused(a), a)
		}
		if localName(host) && !p.AllowPrivateNetworks {
			t.Fatalf("Check(%q) accepted local name %s", raw, host)
		}
		if len(p.AllowedHosts) > 0 && !HostAllowed(p.AllowedHosts, host) {
			t.Fatalf("Check(%q) accepted unlisted host %s", raw, host)
		}
		again, err := p.Check(u.String())
		if err != nil {
			t.Fatalf("Check(%q) accepted %s, but not its own result: %v", raw, u, err)
		}
		if again.String() != u.String() {
			t.Fatalf("Check is not idempotent: %q -> %s -> %s", raw, u, again)
		}
	})
}
