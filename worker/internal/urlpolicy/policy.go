// Package urlpolicy decides which repository URLs a worker may fetch, by the operator's rules:
// https only (ssh when a key is configured, plain http when GIT_ALLOW_HTTP=true); no local paths,
// file:// URLs, loopback, link-local, private, carrier-grade-NAT, unique-local or cloud-metadata
// addresses, and no "localhost" names unless GIT_ALLOW_PRIVATE_NETWORKS=true; only the hosts of
// GIT_ALLOWED_HOSTS when that is set; never credentials inside the URL.
//
// Check judges a URL as written. A host name that resolves to a refused address passes Check, so
// the connection itself must go through DialContext, which judges the address actually dialled
// (after DNS, on every connection and every redirect) and so defeats DNS rebinding.
package urlpolicy

import (
	"net/netip"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/backendim/brain/proto"
)

// Policy holds the operator's rules for repository URLs. The zero value is the strictest policy:
// public https hosts only.
type Policy struct {
	// AllowedHosts, when not empty, lists the only hosts allowed: an exact host name or IP address
	// ("git.example.com"), or "*.example.com" for any name below example.com (not example.com
	// itself). Matching ignores case and a trailing dot. From GIT_ALLOWED_HOSTS.
	AllowedHosts []string
	// AllowHTTP allows plain http:// URLs. From GIT_ALLOW_HTTP.
	AllowHTTP bool
	// AllowPrivateNetworks allows loopback, private, link-local and other non-public addresses,
	// "localhost" names, and file:// URLs and absolute local paths. From GIT_ALLOW_PRIVATE_NETWORKS.
	AllowPrivateNetworks bool
	// AllowSSH allows ssh:// URLs; set it only when the worker has an SSH key.
	AllowSSH bool
}

// Environment variables that change a policy, named in refusals so users can tell operators what
// to change.
const (
	EnvAllowHTTP            = "GIT_ALLOW_HTTP"
	EnvAllowPrivateNetworks = "GIT_ALLOW_PRIVATE_NETWORKS"
	EnvAllowedHosts         = "GIT_ALLOWED_HOSTS"
)

// Check parses raw and returns it, with its scheme and host lower-cased, if the policy allows it.
// Otherwise it returns a *proto.Error with code proto.CodeURLRefused that names the rule and the
// setting that changes it. The error never repeats a password found in raw.
func (p Policy) Check(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, refuse("the repository URL is empty; use an https:// URL")
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] <= ' ' || raw[i] == 0x7f {
			return nil, refuse("the repository URL contains a space or control character")
		}
	}
	if localPath(raw) {
		return p.checkLocalPath(raw)
	}
	if scpLike(raw) {
		return nil, refuse("%q is scp-style; write the URL as https://host/path (or ssh://user@host/path where ssh is allowed)", redactSCP(raw))
	}
	u, err := url.Parse(raw)
	if err == nil && u.Fragment == "" && strings.HasSuffix(raw, "#") {
		u.Fragment = "#" // an empty fragment parses away; keep it so checkShape refuses it
	}
	if err != nil {
		return nil, refuse("the repository URL does not parse; use a URL such as https://git.example.com/org/app.git")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if err := p.checkScheme(u); err != nil {
		return nil, err
	}
	if u.Scheme == "file" {
		return p.checkFileURL(u)
	}
	if err := checkShape(u); err != nil {
		return nil, err
	}
	if err := p.checkHost(u); err != nil {
		return nil, err
	}
	return u, nil
}

func (p Policy) checkScheme(u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if p.AllowHTTP {
			return nil
		}
		return refuse("%s uses plain http; use https:// (the operator allows http with %s=true)", display(u), EnvAllowHTTP)
	case "ssh", "git+ssh", "ssh+git":
		if p.AllowSSH {
			u.Scheme = "ssh"
			return nil
		}
		return refuse("%s uses ssh, which this worker is not set up for (no SSH key); use https://", display(u))
	case "file":
		if p.AllowPrivateNetworks {
			return nil
		}
		return refuse("file:// URLs are refused; use an https:// URL (the operator allows local repositories with %s=true)", EnvAllowPrivateNetworks)
	case "":
		return refuse("the repository URL has no scheme; use a URL such as https://git.example.com/org/app.git")
	}
	return refuse("the %s:// scheme is not supported; use https://", u.Scheme)
}

// checkShape refuses URLs that are not a plain scheme://host[:port]/path.
func checkShape(u *url.URL) error {
	switch {
	case u.Opaque != "":
		return refuse("%s has no host; use a URL such as https://git.example.com/org/app.git", display(u))
	case u.User != nil && u.Scheme != "ssh":
		return refuse("the repository URL must not carry a user name or password; the operator configures credentials per host (GIT_CREDENTIALS_FILE)")
	case u.User != nil && hasPassword(u.User):
		return refuse("the repository URL must not carry a password; the operator configures SSH keys")
	case u.RawQuery != "" || u.ForceQuery:
		return refuse("%s has a ?query; remove it", display(u))
	case u.Fragment != "":
		return refuse("%s has a #fragment; remove it", display(u))
	case u.Hostname() == "":
		return refuse("%s has no host; use a URL such as https://git.example.com/org/app.git", display(u))
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return refuse("%s has an invalid port %q", display(u), port)
		}
	}
	return nil
}

// display returns u for messages, without its user information, query and fragment, any of which
// may hold a token.
func display(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}

func hasPassword(ui *url.Userinfo) bool {
	_, ok := ui.Password()
	return ok
}

func (p Policy) checkHost(u *url.URL) error {
	host := strings.ToLower(u.Hostname())
	u.Host = strings.ToLower(u.Host)
	name := strings.TrimSuffix(host, ".")
	if a, err := netip.ParseAddr(name); err == nil {
		if a.Zone() != "" {
			return refuse("%s names an IPv6 zone; use a host name or a plain address", display(u))
		}
		if why := Refused(a); why != "" && !p.AllowPrivateNetworks {
			return refuse("%s points at a %s address; repositories must be on public hosts (the operator allows private networks with %s=true)", display(u), why, EnvAllowPrivateNetworks)
		}
		return p.checkAllowed(u, a.String())
	}
	if strings.Contains(name, ":") || strings.Contains(name, "%") {
		return refuse("%s has an invalid host", display(u))
	}
	if numericLike(name) {
		return refuse("%s writes an IP address in a non-standard form; use dotted decimal like 203.0.113.7 or a host name", display(u))
	}
	if !validName(name) {
		return refuse("%s has an invalid host name; use its ASCII (punycode) form", display(u))
	}
	if localName(name) && !p.AllowPrivateNetworks {
		return refuse("%s names this machine or a metadata service; repositories must be on public hosts (the operator allows private networks with %s=true)", display(u), EnvAllowPrivateNetworks)
	}
	return p.checkAllowed(u, name)
}

func (p Policy) checkAllowed(u *url.URL, host string) error {
	if len(p.AllowedHosts) == 0 || HostAllowed(p.AllowedHosts, host) {
		return nil
	}
	return refuse("%s is not on the operator's list of allowed git hosts (%s); use a repository on one of: %s",
		u.Hostname(), EnvAllowedHosts, strings.Join(p.AllowedHosts, ", "))
}

// validName reports whether name is an ASCII host name: labels of letters, digits, '-' and '_',
// separated by single dots.
func validName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// localPath reports whether raw is a file system path rather than a URL.
func localPath(raw string) bool {
	if strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "./") || strings.HasPrefix(raw, "../") ||
		strings.HasPrefix(raw, "~") || raw == "." || raw == ".." || strings.HasPrefix(raw, `\`) {
		return true
	}
	// C:\repo or C:/repo
	return len(raw) >= 3 && (raw[0]|0x20) >= 'a' && (raw[0]|0x20) <= 'z' && raw[1] == ':' &&
		(raw[2] == '\\' || raw[2] == '/')
}

// scpLike reports whether raw is git's scp-style [user@]host:path, which has no "://".
func scpLike(raw string) bool {
	colon := strings.IndexByte(raw, ':')
	if colon <= 0 || strings.Contains(raw, "://") {
		return false
	}
	switch strings.ToLower(raw[:colon]) {
	case "https", "http", "ssh", "file", "git":
		return false // a URL missing its "//", refused later for having no host
	}
	slash := strings.IndexByte(raw, '/')
	return slash < 0 || colon < slash
}

// redactSCP drops the user part of an scp-style address, which might hold a secret.
func redactSCP(raw string) string {
	if at := strings.LastIndexByte(raw[:strings.IndexByte(raw, ':')], '@'); at >= 0 {
		return "…@" + raw[at+1:]
	}
	return raw
}

func (p Policy) checkLocalPath(raw string) (*url.URL, error) {
	if !p.AllowPrivateNetworks {
		return nil, refuse("local paths are refused; use an https:// URL (the operator allows local repositories with %s=true)", EnvAllowPrivateNetworks)
	}
	if !strings.HasPrefix(raw, "/") {
		return nil, refuse("local repository path %q is not absolute; write it as /path/to/repo or file:///path/to/repo", raw)
	}
	return &url.URL{Scheme: "file", Path: path.Clean(raw)}, nil
}

func (p Policy) checkFileURL(u *url.URL) (*url.URL, error) {
	if u.Host != "" && !strings.EqualFold(u.Host, "localhost") {
		return nil, refuse("file:// URLs must name a local path, as in file:///path/to/repo")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || !strings.HasPrefix(u.Path, "/") {
		return nil, refuse("file:// URLs must be a plain absolute path, as in file:///path/to/repo")
	}
	return &url.URL{Scheme: "file", Path: path.Clean(u.Path)}, nil
}

func refuse(format string, args ...any) *proto.Error {
	return proto.Errorf(proto.CodeURLRefused, format, args...)
}
