// Package gitcache fetches repositories into a local cache of bare repositories, with go-git and
// no git binary, and hands out a commit's tree as an fs.FS read straight from the object store.
//
// There is one bare repository per normalized URL (see NormalizeURL) under Options.Dir, in a
// directory named by a hash of that URL. Fetches of one repository take turns: within the process
// by a lock per repository, and across processes sharing Dir by an flock on <hash>.lock.
//
// Every fetch uses its own HTTP client: its dialer applies the URL policy to the address actually
// dialled, every redirect is checked against the policy, response bodies count against
// MaxFetchBytes, and the whole fetch has FetchTimeout. Failures a user should see are
// *proto.Error values: url_refused, repo_not_found, repo_auth_failed, repo_unreachable
// (retryable), repo_too_large, commit_not_found, ambiguous_commit. http and https are fetched,
// and ssh:// when Options name an SSH key and a known_hosts file: the connection goes through the
// policy's dialer too, the host key is always verified, the bytes read from the connection count
// against MaxFetchBytes, and the connection ends at FetchTimeout. go-git's file transport is not
// used (it runs the git binary).
package gitcache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/worker/internal/urlpolicy"
)

// Defaults for Options.
const (
	DefaultFetchTimeout  = 2 * time.Minute
	DefaultMaxFetchBytes = 512 << 20
)

// Options configure a Cache.
type Options struct {
	// Dir holds the cache; it is created if missing. Several processes may share it.
	Dir string
	// Policy decides which URLs, addresses and redirects are allowed.
	Policy urlpolicy.Policy
	// Credentials are sent, as HTTP basic auth, to the scheme and host they are configured for.
	Credentials Credentials
	// SSHKeyFile is a private key (unencrypted, not readable by others) used for ssh:// URLs;
	// empty refuses them. From GIT_SSH_KEY_FILE.
	SSHKeyFile string
	// SSHKnownHostsFile is the known_hosts file SSH host keys are verified against; required with
	// SSHKeyFile. From GIT_SSH_KNOWN_HOSTS.
	SSHKnownHostsFile string
	// FetchTimeout bounds each fetch; default DefaultFetchTimeout.
	FetchTimeout time.Duration
	// MaxFetchBytes bounds the bytes read from the server per fetch; default DefaultMaxFetchBytes.
	MaxFetchBytes int64
	// Logger gets one line per fetch; default slog.Default().
	Logger *slog.Logger
}

// Cache is a directory of bare repositories. It is safe for concurrent use.
type Cache struct {
	opts  Options
	ssh   *sshIdentity // nil: no ssh
	locks repoLocks
}

// Commit is a resolved commit and its tree.
type Commit struct {
	// Hash is the full SHA, 40 lower-case hex digits.
	Hash string
	// Subject is the first line of the commit message.
	Subject string
	// CacheHit reports that no objects were downloaded: either no network request was made (a
	// full SHA already cached) or the server's refs pointed at objects already in the cache.
	CacheHit bool
	// FS is the commit's tree, read from the object store. It is safe for concurrent use and
	// stays valid while the cache directory exists.
	FS fs.FS
}

// Open prepares a cache in opts.Dir, creating the directory if needed.
func Open(opts Options) (*Cache, error) {
	if opts.Dir == "" {
		return nil, errors.New("open git cache: no directory")
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	if opts.MaxFetchBytes <= 0 {
		opts.MaxFetchBytes = DefaultMaxFetchBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	c := &Cache{opts: opts}
	if opts.SSHKeyFile != "" {
		id, err := loadSSHIdentity(opts.SSHKeyFile, opts.SSHKnownHostsFile)
		if err != nil {
			return nil, fmt.Errorf("open git cache: %w", err)
		}
		c.ssh = id
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("open git cache: %w", err)
	}
	return c, nil
}

// Checkout resolves ref in the repository at repoURL and returns the commit with its tree. ref
// is a full or abbreviated (at least 4 hex digits, unique) SHA, a branch, a tag, or a full
// reference name; see the package doc for the order. A full SHA already in the cache is served
// without any network request. progress, if not nil, gets short human-readable lines while the
// server prepares and sends objects.
func (c *Cache) Checkout(ctx context.Context, repoURL, ref string, progress func(string)) (*Commit, error) {
	u, err := c.opts.Policy.Check(repoURL)
	if err != nil {
		return nil, err
	}
	switch {
	case u.Scheme == "ssh" && c.ssh == nil:
		return nil, proto.Errorf(proto.CodeURLRefused, "%s uses ssh, which this worker is not set up for (no SSH key); use https://", display(u))
	case u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "ssh":
		return nil, proto.Errorf(proto.CodeURLRefused, "this worker fetches repositories over https only; %s is not supported", u.Scheme+"://")
	}
	norm := NormalizeURL(u)
	key := repoKey(norm)
	dir := filepath.Join(c.opts.Dir, key)
	if sha, ok := fullSHA(ref); ok {
		if commit, err := cachedCommit(dir, sha); err == nil && commit != nil {
			c.opts.Logger.DebugContext(ctx, "git cache hit", "repo", display(u), "commit", commit.Hash)
			return commit, nil
		}
	}
	unlock, err := c.locks.lock(ctx, key, dir+".lock")
	if err != nil {
		return nil, fmt.Errorf("checkout %s: %w", display(u), err)
	}
	defer unlock()
	return c.fetchAndResolve(ctx, u, dir, norm, ref, progress)
}

// cachedCommit returns the commit sha from the cache entry in dir, or nil if it is not there.
// Objects are immutable and packs appear atomically, so this needs no lock.
func cachedCommit(dir string, sha plumbing.Hash) (*Commit, error) {
	if _, err := os.Stat(filepath.Join(dir, "objects")); err != nil {
		return nil, err
	}
	st := openStorage(dir)
	c, err := object.GetCommit(st, sha)
	if err != nil {
		return nil, err
	}
	return newCommit(st, c, true)
}

func openStorage(dir string) *filesystem.Storage {
	return filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
}

func newCommit(st *filesystem.Storage, c *object.Commit, hit bool) (*Commit, error) {
	tfs, err := commitFS(st, c)
	if err != nil {
		return nil, err
	}
	return &Commit{Hash: c.Hash.String(), Subject: subject(c.Message), CacheHit: hit, FS: tfs}, nil
}

// fetchAndResolve runs under the entry's lock.
func (c *Cache) fetchAndResolve(ctx context.Context, u *url.URL, dir, norm, ref string, progress func(string)) (*Commit, error) {
	st, err := initStorage(dir, norm)
	if err != nil {
		return nil, fmt.Errorf("checkout %s: %w", display(u), err)
	}
	removeTempPacks(c.opts.Logger, dir) // from a process that died mid-fetch
	if sha, ok := fullSHA(ref); ok {    // fetched by another caller while this one waited?
		if commit, err := object.GetCommit(st, sha); err == nil {
			return newCommit(st, commit, true)
		}
	}
	res, err := c.fetch(ctx, st, u, ref, progress)
	if err != nil {
		removeTempPacks(c.opts.Logger, dir)
		return nil, err
	}
	commit, err := resolve(st, ref, res.refs, display(u))
	if err != nil {
		return nil, err
	}
	return newCommit(st, commit, !res.downloaded)
}

// removeTempPacks deletes the partial pack an interrupted fetch leaves behind (go-git keeps it when
// the stream fails). Callers hold the entry's lock, so no fetch is writing one.
func removeTempPacks(log *slog.Logger, dir string) {
	partial, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "tmp_pack_*"))
	for _, p := range partial {
		if err := os.Remove(p); err != nil {
			log.Warn("remove partial pack", "path", p, "error", err)
		}
	}
}

// initStorage opens the bare repository in dir, creating it on first use with the normalized URL
// as its "origin" remote, for people inspecting the cache.
func initStorage(dir, norm string) (*filesystem.Storage, error) {
	st := openStorage(dir)
	if _, err := os.Stat(filepath.Join(dir, "config")); err == nil {
		return st, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create cache entry: %w", err)
	}
	repo, err := git.Init(st, nil)
	if errors.Is(err, git.ErrRepositoryAlreadyExists) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("init cache entry %s: %w", dir, err)
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{norm}}); err != nil {
		return nil, fmt.Errorf("init cache entry %s: %w", dir, err)
	}
	return st, nil
}

// fetch runs one fetch with its own HTTP client (or SSH connection) and maps its failure to a
// *proto.Error.
func (c *Cache) fetch(ctx context.Context, st *filesystem.Storage, u *url.URL, ref string, progress func(string)) (fetchResult, error) {
	start := time.Now()
	fctx, cancel := context.WithTimeout(ctx, c.opts.FetchTimeout)
	defer cancel()
	state := &fetchState{limit: c.opts.MaxFetchBytes}
	f := &fetcher{st: st, u: u, ref: ref, progress: progress}
	var client transport.Transport
	var hasCreds bool
	if u.Scheme == "ssh" {
		hasCreds = true
		client = &sshTransport{ctx: fctx, id: c.ssh, state: state,
			dial: c.opts.Policy.DialContext(&net.Dialer{Timeout: sshConnectTimeout, KeepAlive: 30 * time.Second})}
	} else {
		hc, closeIdle := newHTTPClient(c.opts.Policy, state, c.opts.FetchTimeout)
		defer closeIdle()
		var cred credential
		if cred, hasCreds = c.opts.Credentials.lookup(u); hasCreds {
			f.auth = &githttp.BasicAuth{Username: cred.user, Password: cred.password}
		}
		client = githttp.NewClientWithOptions(hc, &githttp.ClientOptions{RedirectPolicy: githttp.FollowInitialRedirects})
	}
	res, err := f.run(fctx, client)
	res.bytes = state.read.Load()
	log := c.opts.Logger.With("repo", display(u), "ref", ref, "bytes", res.bytes,
		"downloaded", res.downloaded, "credentials", hasCreds, "duration", time.Since(start).Round(time.Millisecond))
	if err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("fetch %s: %w", display(u), ctx.Err())
		}
		perr := classify(failure{err: err, state: state, repo: display(u), origin: origin(u), hasCreds: hasCreds,
			timeout: c.opts.FetchTimeout, fetchCtx: fctx})
		log.InfoContext(ctx, "git fetch", "code", perr.Code, "cause", detail(err))
		return res, perr
	}
	log.InfoContext(ctx, "git fetch")
	return res, nil
}
