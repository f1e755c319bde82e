package gitcache

import (
	"bufio"
	"bytes"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
)

// Credentials holds the operator's git credentials, one user name and token per scheme and host.
// The zero value holds none. Tokens never appear in errors, logs or String.
type Credentials struct {
	byOrigin map[string]credential
}

type credential struct {
	user, password string
}

// LoadCredentials reads a file in git-credential-store format (GIT_CREDENTIALS_FILE): one
// https://user:token@host[:port] per line, user and token percent-encoded; blank lines and lines
// starting with '#' are skipped; the first line for a host wins; any path is ignored. The file
// must not be readable by others nor writable by its group (chmod 600, or 640/440 as a Kubernetes
// Secret mounted with fsGroup is).
func LoadCredentials(path string) (Credentials, error) {
	info, err := os.Stat(path)
	if err != nil {
		return Credentials{}, fmt.Errorf("load git credentials: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o027 != 0 {
		return Credentials{}, fmt.Errorf("load git credentials: %s is open to others (mode %04o); run chmod 600 %s", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, fmt.Errorf("load git credentials: %w", err)
	}
	creds, err := ParseCredentials(data)
	if err != nil {
		return Credentials{}, fmt.Errorf("load git credentials from %s: %w", path, err)
	}
	return creds, nil
}

// ParseCredentials parses git-credential-store lines as LoadCredentials does, without the file
// permission check. Errors name the line number, never its content.
func ParseCredentials(data []byte) (Credentials, error) {
	c := Credentials{byOrigin: map[string]credential{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, err := url.Parse(line)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return Credentials{}, fmt.Errorf("line %d: want https://user:token@host", n)
		}
		pass, ok := u.User.Password()
		if !ok || u.User.Username() == "" {
			return Credentials{}, fmt.Errorf("line %d: want https://user:token@host (user and token are both needed)", n)
		}
		key := origin(u)
		if _, dup := c.byOrigin[key]; !dup {
			c.byOrigin[key] = credential{user: u.User.Username(), password: pass}
		}
	}
	if err := sc.Err(); err != nil {
		return Credentials{}, err
	}
	return c, nil
}

// lookup returns the credential for the scheme and host of u.
func (c Credentials) lookup(u *url.URL) (credential, bool) {
	cred, ok := c.byOrigin[origin(u)]
	return cred, ok
}

// Origins lists the scheme://host[:port] origins that have credentials, for logs.
func (c Credentials) Origins() []string {
	out := make([]string, 0, len(c.byOrigin))
	for k := range c.byOrigin {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// String lists the origins, never the tokens.
func (c Credentials) String() string {
	return fmt.Sprintf("git credentials for %d hosts %v", len(c.byOrigin), c.Origins())
}

// origin returns scheme://host[:port] of u, lower-cased, without a default port.
func origin(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	return scheme + "://" + hostPort(scheme, u)
}

// hostPort returns u's host, lower-cased, with its port unless it is the scheme's default.
func hostPort(scheme string, u *url.URL) string {
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := u.Port()
	if port == "" || (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		return host
	}
	return host + ":" + port
}
