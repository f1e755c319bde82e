package gitcache

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"strings"
)

// NormalizeURL returns the form of a repository URL that names its cache entry: scheme and host
// lower-cased, the scheme's default port dropped, user information, query and fragment dropped,
// trailing slashes and one ".git" suffix removed. The path keeps its case, since servers may
// distinguish it. So https://GitHub.com:443/org/App.git/ and https://github.com/org/App share an
// entry.
func NormalizeURL(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	p := strings.TrimRight(u.EscapedPath(), "/")
	p = strings.TrimSuffix(p, ".git")
	p = strings.TrimRight(p, "/")
	return scheme + "://" + hostPort(scheme, u) + p
}

// repoKey names a repository's directory in the cache: 32 hex digits of a hash of its normalized
// URL, so no URL can make a path of its own.
func repoKey(normalized string) string {
	sum := sha256.Sum256([]byte(normalized))
	return hex.EncodeToString(sum[:16])
}

// display returns u for messages and logs: without user information, query or fragment.
func display(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment, c.RawFragment = nil, "", false, "", ""
	return c.String()
}
