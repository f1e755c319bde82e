package urlpolicy

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/backendim/brain/proto"
)

// checkResult is what a test compares: the accepted URL, or the refusal's code.
type checkResult struct {
	URL  string
	Code proto.Code
}

func runCheck(t *testing.T, p Policy, raw string) (checkResult, string) {
	t.Helper()
	u, err := p.Check(raw)
	if err == nil {
		return checkResult{URL: u.String()}, ""
	}
	var pe *proto.Error
	if !errors.As(err, &pe) {
		t.Fatalf("Check(%q) error %v (%T) is not a *proto.Error", raw, err, err)
	}
	return checkResult{Code: pe.Code}, pe.Message
}

func TestCheck(t *testing.T) {
	t.Parallel()
	var (
		strict  = Policy{}
		http    = Policy{AllowHTTP: true}
		private = Policy{AllowPrivateNetworks: true}
		ssh     = Policy{AllowSSH: true}
		listed  = Policy{AllowedHosts: []string{"github.com", "*.example.com", "[2606:4700::1111]"}}
		listedP = Policy{AllowedHosts: []string{"10.1.2.3"}, AllowPrivateNetworks: true}
	)
	tests := []struct {
		name   string
		policy Policy
		raw    string
		want   string // accepted URL; "" when refused
		// mention must all appear in the refusal's message; secret must not.
		mention []string
		secret  string
	}{
		// schemes
		{name: "https", policy: strict, raw: "https://github.com/org/app.git", want: "https://github.com/org/app.git"},
		{name: "scheme and host lower-cased", policy: strict, raw: "HTTPS://GitHub.COM/Org/App.git", want: "https://github.com/Org/App.git"},
		{name: "explicit port kept", policy: strict, raw: "https://git.example.org:8443/app", want: "https://git.example.org:8443/app"},
		{name: "http refused", policy: strict, raw: "http://github.com/org/app.git", mention: []string{"GIT_ALLOW_HTTP=true", "https://"}},
		{name: "http allowed", policy: http, raw: "http://github.com/org/app.git", want: "http://github.com/org/app.git"},
		{name: "ssh refused", policy: strict, raw: "ssh://git@github.com/org/app.git", mention: []string{"ssh", "https://"}},
		{name: "ssh allowed", policy: ssh, raw: "ssh://git@github.com/org/app.git", want: "ssh://git@github.com/org/app.git"},
		{name: "git+ssh allowed as ssh", policy: ssh, raw: "git+ssh://git@github.com/org/app.git", want: "ssh://git@github.com/org/app.git"},
		{name: "ssh password refused", policy: ssh, raw: "ssh://git:hunter2@github.com/app.git", mention: []string{"password"}, secret: "hunter2"},
		{name: "scp style", policy: ssh, raw: "git@github.com:org/app.git", mention: []string{"scp-style", "github.com"}},
		{name: "scp style hides user", policy: strict, raw: "tok3n@github.com:org/app.git", secret: "tok3n"},
		{name: "git protocol", policy: strict, raw: "git://github.com/org/app.git", mention: []string{"git://", "https://"}},
		{name: "ftp", policy: private, raw: "ftp://example.com/app.git", mention: []string{"ftp://"}},
		{name: "no scheme", policy: strict, raw: "github.com/org/app.git", mention: []string{"no scheme"}},
		// local repositories
		{name: "file refused", policy: strict, raw: "file:///srv/git/app.git", mention: []string{"GIT_ALLOW_PRIVATE_NETWORKS=true"}},
		{name: "file allowed", policy: private, raw: "file:///srv/git/app.git", want: "file:///srv/git/app.git"},
		{name: "file localhost allowed", policy: private, raw: "file://localhost/srv/git/../app.git", want: "file:///srv/app.git"},
		{name: "file remote host", policy: private, raw: "file://evil.example.com/srv/app.git", mention: []string{"local path"}},
		{name: "FILE upper-case", policy: strict, raw: "FILE:///etc", mention: []string{"file://"}},
		{name: "absolute path refused", policy: strict, raw: "/srv/git/app.git", mention: []string{"local paths", "GIT_ALLOW_PRIVATE_NETWORKS=true"}},
		{name: "absolute path allowed", policy: private, raw: "/srv/git/app.git", want: "file:///srv/git/app.git"},
		{name: "relative path", policy: private, raw: "./app", mention: []string{"not absolute"}},
		{name: "parent path", policy: strict, raw: "../app", mention: []string{"local paths"}},
		{name: "home path", policy: strict, raw: "~/app", mention: []string{"local paths"}},
		{name: "windows path", policy: strict, raw: `C:\repos\app`, mention: []string{"local paths"}},
		{name: "windows slash path", policy: strict, raw: "c:/repos/app", mention: []string{"local paths"}},
		{name: "UNC path", policy: strict, raw: `\\server\share\app`, mention: []string{"local paths"}},
		// credentials and other parts
		{name: "user and token", policy: strict, raw: "https://user:s3cr3t-token@github.com/app.git", mention: []string{"GIT_CREDENTIALS_FILE"}, secret: "s3cr3t-token"},
		{name: "token as user", policy: strict, raw: "https://ghp_abcdef123@github.com/app.git", secret: "ghp_abcdef123"},
		{name: "token in http refusal", policy: strict, raw: "http://ghp_abcdef123@github.com/app.git", mention: []string{"GIT_ALLOW_HTTP"}, secret: "ghp_abcdef123"},
		{name: "query", policy: strict, raw: "https://gitlab.com/app.git?private_token=xyz789", mention: []string{"query"}, secret: "xyz789"},
		{name: "empty query", policy: strict, raw: "https://gitlab.com/app.git?", mention: []string{"query"}},
		{name: "fragment", policy: strict, raw: "https://gitlab.com/app.git#main", mention: []string{"fragment"}},
		{name: "empty fragment", policy: strict, raw: "https://gitlab.com/app.git#", mention: []string{"fragment"}},
		{name: "no host", policy: strict, raw: "https:///app.git", mention: []string{"no host"}},
		{name: "opaque", policy: strict, raw: "https:github.com/app.git", mention: []string{"no host"}},
		{name: "port zero", policy: strict, raw: "https://github.com:0/app.git", mention: []string{"port"}},
		{name: "port too big", policy: strict, raw: "https://github.com:99999/app.git", mention: []string{"port"}},
		{name: "empty", policy: strict, raw: "", mention: []string{"empty"}},
		{name: "leading space", policy: strict, raw: " https://github.com/app.git", mention: []string{"space"}},
		{name: "newline", policy: strict, raw: "https://github.com/app.git\n", mention: []string{"control"}},
		{name: "not ascii host", policy: strict, raw: "https://bücher.example/app.git", mention: []string{"punycode"}},
		{name: "punycode host", policy: strict, raw: "https://xn--bcher-kva.example/app.git", want: "https://xn--bcher-kva.example/app.git"},
		{name: "empty label", policy: strict, raw: "https://git..example.com/app.git", mention: []string{"invalid host"}},
		// IPv4 addresses
		{name: "public IPv4", policy: strict, raw: "https://1.1.1.1/app.git", want: "https://1.1.1.1/app.git"},
		{name: "loopback", policy: strict, raw: "https://127.0.0.1/app.git", mention: []string{"loopback", "GIT_ALLOW_PRIVATE_NETWORKS=true"}},
		{name: "loopback other", policy: strict, raw: "https://127.45.6.7:8443/app.git", mention: []string{"loopback"}},
		{name: "loopback allowed", policy: private, raw: "https://127.0.0.1:8443/app.git", want: "https://127.0.0.1:8443/app.git"},
		{name: "loopback allowed but http", policy: private, raw: "http://127.0.0.1/app.git", mention: []string{"GIT_ALLOW_HTTP"}},
		{name: "private 10", policy: strict, raw: "https://10.0.0.1/app.git", mention: []string{"private"}},
		{name: "private 172", policy: strict, raw: "https://172.16.5.4/app.git", mention: []string{"private"}},
		{name: "public 172.32", policy: strict, raw: "https://172.32.0.1/app.git", want: "https://172.32.0.1/app.git"},
		{name: "private 192.168", policy: strict, raw: "https://192.168.1.1/app.git", mention: []string{"private"}},
		{name: "CGNAT", policy: strict, raw: "https://100.64.0.1/app.git", mention: []string{"carrier-grade NAT"}},
		{name: "metadata", policy: strict, raw: "https://169.254.169.254/latest/meta-data", mention: []string{"cloud metadata"}},
		{name: "link-local", policy: strict, raw: "https://169.254.1.1/app.git", mention: []string{"link-local"}},
		{name: "unspecified", policy: strict, raw: "https://0.0.0.0/app.git", mention: []string{"unspecified"}},
		{name: "this network", policy: strict, raw: "https://0.1.2.3/app.git", mention: []string{"this network"}},
		{name: "multicast", policy: strict, raw: "https://224.0.0.1/app.git", mention: []string{"multicast"}},
		{name: "broadcast", policy: strict, raw: "https://255.255.255.255/app.git", mention: []string{"broadcast"}},
		{name: "reserved", policy: strict, raw: "https://240.1.2.3/app.git", mention: []string{"reserved"}},
		{name: "trailing dot address", policy: strict, raw: "https://127.0.0.1./app.git", mention: []string{"loopback"}},
		// IPv4 spellings that C resolvers accept and url.Parse lets through
		{name: "decimal", policy: strict, raw: "https://2130706433/app.git", mention: []string{"non-standard"}},
		{name: "hex", policy: strict, raw: "https://0x7f000001/app.git", mention: []string{"non-standard"}},
		{name: "hex dotted", policy: strict, raw: "https://0x7f.0.0.1/app.git", mention: []string{"non-standard"}},
		{name: "octal", policy: strict, raw: "https://0177.0.0.1/app.git", mention: []string{"non-standard"}},
		{name: "octal long", policy: strict, raw: "https://017700000001/app.git", mention: []string{"non-standard"}},
		{name: "short form", policy: strict, raw: "https://127.1/app.git", mention: []string{"non-standard"}},
		{name: "short form even if private allowed", policy: private, raw: "https://10.1/app.git", mention: []string{"non-standard"}},
		{name: "leading zero public", policy: strict, raw: "https://01.1.1.1/app.git", mention: []string{"non-standard"}},
		{name: "percent-encoded loopback", policy: strict, raw: "https://%31%32%37.0.0.1/app.git", mention: []string{"does not parse"}},
		// IPv6 addresses
		{name: "public IPv6", policy: strict, raw: "https://[2606:4700::1111]/app.git", want: "https://[2606:4700::1111]/app.git"},
		{name: "IPv6 loopback", policy: strict, raw: "https://[::1]/app.git", mention: []string{"loopback"}},
		{name: "IPv6 loopback long", policy: strict, raw: "https://[0:0:0:0:0:0:0:1]:443/app.git", mention: []string{"loopback"}},
		{name: "IPv6 unspecified", policy: strict, raw: "https://[::]/app.git", mention: []string{"unspecified"}},
		{name: "IPv4-mapped loopback", policy: strict, raw: "https://[::ffff:127.0.0.1]/app.git", mention: []string{"loopback"}},
		{name: "IPv4-mapped hex", policy: strict, raw: "https://[::ffff:7f00:1]/app.git", mention: []string{"loopback"}},
		{name: "IPv4-mapped metadata", policy: strict, raw: "https://[::ffff:a9fe:a9fe]/app.git", mention: []string{"cloud metadata"}},
		{name: "IPv4-compatible", policy: strict, raw: "https://[::10.0.0.1]/app.git", mention: []string{"private", "IPv4-compatible"}},
		{name: "NAT64", policy: strict, raw: "https://[64:ff9b::a00:1]/app.git", mention: []string{"private", "NAT64"}},
		{name: "NAT64 public", policy: strict, raw: "https://[64:ff9b::101:101]/app.git", want: "https://[64:ff9b::101:101]/app.git"},
		{name: "6to4", policy: strict, raw: "https://[2002:7f00:1::1]/app.git", mention: []string{"loopback", "6to4"}},
		{name: "ULA", policy: strict, raw: "https://[fd12:3456::1]/app.git", mention: []string{"private"}},
		{name: "IPv6 link-local", policy: strict, raw: "https://[fe80::1]/app.git", mention: []string{"link-local"}},
		{name: "IPv6 zone", policy: private, raw: "https://[fe80::1%25eth0]/app.git", mention: []string{"zone"}},
		{name: "IPv6 site-local", policy: strict, raw: "https://[fec0::1]/app.git", mention: []string{"site-local"}},
		{name: "IPv6 multicast", policy: strict, raw: "https://[ff02::1]/app.git", mention: []string{"multicast"}},
		{name: "AWS IPv6 metadata", policy: strict, raw: "https://[fd00:ec2::254]/app.git", mention: []string{"cloud metadata"}},
		{name: "IPv6 private allowed", policy: private, raw: "https://[::1]:8443/app.git", want: "https://[::1]:8443/app.git"},
		// names of this machine
		{name: "localhost", policy: strict, raw: "https://localhost/app.git", mention: []string{"this machine", "GIT_ALLOW_PRIVATE_NETWORKS=true"}},
		{name: "localhost upper-case trailing dot", policy: strict, raw: "https://LOCALHOST./app.git", mention: []string{"this machine"}},
		{name: "sub.localhost", policy: strict, raw: "https://git.localhost:3000/app.git", mention: []string{"this machine"}},
		{name: "GCE metadata", policy: strict, raw: "https://metadata.google.internal/computeMetadata/v1/", mention: []string{"metadata"}},
		{name: "localhost allowed", policy: private, raw: "https://localhost:3000/app.git", want: "https://localhost:3000/app.git"},
		{name: "localhost-like public name", policy: strict, raw: "https://localhost.example.com/app.git", want: "https://localhost.example.com/app.git"},
		// allowlist
		{name: "listed exact", policy: listed, raw: "https://github.com/org/app.git", want: "https://github.com/org/app.git"},
		{name: "listed case and dot", policy: listed, raw: "https://GitHub.com./org/app.git", want: "https://github.com./org/app.git"},
		{name: "listed wildcard", policy: listed, raw: "https://git.example.com/app.git", want: "https://git.example.com/app.git"},
		{name: "listed wildcard deep", policy: listed, raw: "https://a.b.example.com/app.git", want: "https://a.b.example.com/app.git"},
		{name: "wildcard excludes apex", policy: listed, raw: "https://example.com/app.git", mention: []string{"GIT_ALLOWED_HOSTS"}},
		{name: "not listed", policy: listed, raw: "https://gitlab.com/app.git", mention: []string{"GIT_ALLOWED_HOSTS", "gitlab.com"}},
		{name: "suffix trick", policy: listed, raw: "https://evilgithub.com/app.git", mention: []string{"GIT_ALLOWED_HOSTS"}},
		{name: "prefix trick", policy: listed, raw: "https://github.com.evil.net/app.git", mention: []string{"GIT_ALLOWED_HOSTS"}},
		{name: "wildcard suffix trick", policy: listed, raw: "https://evilexample.com/app.git", mention: []string{"GIT_ALLOWED_HOSTS"}},
		{name: "listed IPv6", policy: listed, raw: "https://[2606:4700:0::1111]/app.git", want: "https://[2606:4700:0::1111]/app.git"},
		{name: "listed private address", policy: listedP, raw: "https://10.1.2.3/app.git", want: "https://10.1.2.3/app.git"},
		{name: "unlisted private address", policy: listedP, raw: "https://10.1.2.4/app.git", mention: []string{"GIT_ALLOWED_HOSTS"}},
		{name: "private before list", policy: Policy{AllowedHosts: []string{"127.0.0.1"}}, raw: "https://127.0.0.1/app.git", mention: []string{"loopback"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, msg := runCheck(t, tt.policy, tt.raw)
			want := checkResult{URL: tt.want}
			if tt.want == "" {
				want.Code = proto.CodeURLRefused
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("Check(%q) (-want +got):\n%s\nmessage: %s", tt.raw, diff, msg)
			}
			for _, m := range tt.mention {
				if !strings.Contains(msg, m) {
					t.Errorf("Check(%q) message %q does not mention %q", tt.raw, msg, m)
				}
			}
			if tt.secret != "" && strings.Contains(msg, tt.secret) {
				t.Errorf("Check(%q) message %q repeats the secret %q", tt.raw, msg, tt.secret)
			}
		})
	}
}

func TestRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want string
	}{
		{"8.8.8.8", ""},
		{"2001:4860:4860::8888", ""},
		{"127.0.0.1", "loopback"},
		{"::1", "loopback"},
		{"10.255.255.255", "private"},
		{"172.31.255.255", "private"},
		{"192.168.0.1", "private"},
		{"fc00::1", "private"},
		{"169.254.169.254", "cloud metadata"},
		{"::ffff:169.254.169.254", "cloud metadata"},
		{"169.254.0.1", "link-local"},
		{"fe80::abcd", "link-local"},
		{"fe80::abcd%eth0", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"100.127.255.255", "carrier-grade NAT (100.64.0.0/10)"},
		{"100.128.0.0", ""},
		{"239.255.255.250", "multicast"},
		{"ff05::2", "multicast"},
		{"198.18.0.1", "benchmarking (198.18.0.0/15)"},
		{"64:ff9b::7f00:1", "loopback (127.0.0.1 in a NAT64 address)"},
		{"2002:c0a8:101::", "private (192.168.1.1 in a 6to4 address)"},
		{"2002:808:808::", ""},
		{"::7f00:1", "loopback (127.0.0.1 in an IPv4-compatible address)"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			if got := Refused(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("Refused(%s) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
	if got := Refused(netip.Addr{}); got != "invalid" {
		t.Errorf("Refused(zero Addr) = %q, want \"invalid\"", got)
	}
}

func TestParseHosts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "github.com", want: []string{"github.com"}},
		{in: "GitHub.com., *.Example.com  gitlab.com,", want: []string{"github.com", "*.example.com", "gitlab.com"}},
		{in: "10.0.0.1,[::1],::ffff:1.2.3.4", want: []string{"10.0.0.1", "::1", "1.2.3.4"}},
		{in: "*", wantErr: true},
		{in: "*.", wantErr: true},
		{in: "git hub.com/x", wantErr: true},
		{in: "https://github.com", wantErr: true},
		{in: "127.1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseHosts(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseHosts(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseHosts(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestHostAllowed(t *testing.T) {
	t.Parallel()
	patterns := []string{"GitHub.com", "*.corp.example", "[2001:db8::1]", "192.0.2.7"}
	tests := []struct {
		host string
		want bool
	}{
		{"github.com", true},
		{"GITHUB.COM.", true},
		{"api.github.com", false},
		{"git.corp.example", true},
		{"corp.example", false},
		{"xcorp.example", false},
		{"2001:db8:0:0::1", true},
		{"[2001:db8::1]", true},
		{"::ffff:192.0.2.7", true},
		{"192.0.2.8", false},
	}
	for _, tt := range tests {
		if got := HostAllowed(patterns, tt.host); got != tt.want {
			t.Errorf("HostAllowed(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}
