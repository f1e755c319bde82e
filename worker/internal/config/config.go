// Package config gathers the worker's settings from flags whose defaults come from environment
// variables (every variable is listed in the README and .env.example).
package config

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"github.com/backendim/brain/proto/envflag"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/backendim/brain/proto/layout"
	"github.com/backendim/brain/worker/internal/cluster"
	"github.com/backendim/brain/worker/internal/render"
	"github.com/backendim/brain/worker/internal/urlpolicy"
)

// Config is the worker's configuration.
type Config struct {
	ListenAddr    string
	NATSURL       string
	NATSCredsFile string
	NATSNkeyFile  string
	Layout        layout.Config

	WorkerID        string
	CacheDir        string
	Concurrency     int
	JobTimeout      time.Duration
	ShutdownTimeout time.Duration

	GitAllowedHosts      []string // parsed by urlpolicy.ParseHosts
	GitAllowHTTP         bool
	GitAllowPrivate      bool
	GitCredentialsFile   string
	GitSSHKeyFile        string // private key for ssh:// URLs; empty: ssh refused
	GitSSHKnownHosts     string // known_hosts file, required with GitSSHKeyFile
	GitFetchTimeout      time.Duration
	GitMaxFetchBytes     int64
	RenderLimits         render.Limits
	Cluster              cluster.Config
	ApplyAllowedKinds    []string
	ApplyForceConflicts  bool
	HealthTimeout        time.Duration
	NamespaceQuota       string // raw values, parsed by deployer.ParseGuards
	NamespaceLimitRange  string
	NamespaceNetworkPol  string
	NamespacePodSecurity string

	LogFormat string // "", "json" or "text"; "" picks text on a terminal, json otherwise
	LogLevel  string
}

// Policy is the repository URL policy of the configuration.
func (c Config) Policy() urlpolicy.Policy {
	return urlpolicy.Policy{AllowedHosts: c.GitAllowedHosts, AllowHTTP: c.GitAllowHTTP,
		AllowPrivateNetworks: c.GitAllowPrivate, AllowSSH: c.GitSSHKeyFile != ""}
}

// Load parses args with defaults from getenv, then validates the result. Errors name the
// variable to fix. Usage goes to output.
func Load(args []string, getenv func(string) string, output io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(output)
	e := envflag.New(fs, getenv)
	e.String(&c.ListenAddr, "LISTEN_ADDR", ":8080", "address serving /health, /ready and /metrics")
	e.String(&c.NATSURL, "NATS_URL", "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated")
	e.String(&c.NATSCredsFile, "NATS_CREDS_FILE", "", "NATS credentials (.creds) file")
	e.String(&c.NATSNkeyFile, "NATS_NKEY_FILE", "", "NATS nkey seed file of the worker's user (gateway nats-keys)")
	layout.Flags(e, &c.Layout, true)
	e.String(&c.WorkerID, "WORKER_ID", hostname(), "this worker's name in events and job records (default: the host name)")
	e.String(&c.CacheDir, "CACHE_DIR", "./data/cache", "git cache directory; workers may share it")
	e.Int(&c.Concurrency, "WORKER_CONCURRENCY", 4, "jobs run at once")
	e.Duration(&c.JobTimeout, "JOB_TIMEOUT", 10*time.Minute, "limit of one job attempt, from start to finish")
	e.Duration(&c.ShutdownTimeout, "SHUTDOWN_TIMEOUT", 30*time.Second, "on SIGTERM, time running jobs get to finish before they are handed back")
	gitFlags(e, &c)
	clusterFlags(e, &c)
	e.String(&c.LogFormat, "LOG_FORMAT", "", "json or text (default: text on a terminal, json otherwise)")
	e.String(&c.LogLevel, "LOG_LEVEL", "info", "debug, info, warn or error")
	if err := e.Parse(args); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
}

func gitFlags(e *envflag.Set, c *Config) {
	c.GitAllowedHosts = envflag.Default(e, "GIT_ALLOWED_HOSTS", nil, urlpolicy.ParseHosts)
	e.FlagSet.Func(envflag.Name("GIT_ALLOWED_HOSTS"), envflag.Usage("GIT_ALLOWED_HOSTS", "only these repository hosts (name, IP or *.domain), comma-separated; empty: any public host"),
		func(s string) (err error) {
			c.GitAllowedHosts, err = urlpolicy.ParseHosts(s)
			return err
		})
	e.Bool(&c.GitAllowHTTP, "GIT_ALLOW_HTTP", false, "allow plain http:// repository URLs")
	e.Bool(&c.GitAllowPrivate, "GIT_ALLOW_PRIVATE_NETWORKS", false, "allow loopback, private and link-local repository addresses")
	e.String(&c.GitCredentialsFile, "GIT_CREDENTIALS_FILE", "", "git-credential-store file with per-host credentials")
	e.String(&c.GitSSHKeyFile, "GIT_SSH_KEY_FILE", "", "private SSH key (unencrypted, chmod 600) for ssh:// repository URLs; empty: ssh is refused")
	e.String(&c.GitSSHKnownHosts, "GIT_SSH_KNOWN_HOSTS", "", "known_hosts file SSH host keys are verified against; required with GIT_SSH_KEY_FILE")
	e.Duration(&c.GitFetchTimeout, "GIT_FETCH_TIMEOUT", 2*time.Minute, "limit of one git fetch")
	e.Bytes(&c.GitMaxFetchBytes, "GIT_MAX_FETCH_BYTES", 512<<20, "bytes one git fetch may read")
	d := render.DefaultLimits()
	e.Int(&c.RenderLimits.MaxFiles, "RENDER_MAX_FILES", d.MaxFiles, "manifest files one job may read")
	e.Bytes(&c.RenderLimits.MaxFileBytes, "RENDER_MAX_FILE_BYTES", d.MaxFileBytes, "size of one manifest file")
	e.Bytes(&c.RenderLimits.MaxTotalBytes, "RENDER_MAX_TOTAL_BYTES", d.MaxTotalBytes, "size of all manifest files of one job")
	e.Int(&c.RenderLimits.MaxObjects, "RENDER_MAX_OBJECTS", d.MaxObjects, "objects one job may render")
}

func clusterFlags(e *envflag.Set, c *Config) {
	c.Cluster.Mode = cluster.Mode(cmp.Or(e.Getenv("KUBE_AUTH"), string(cluster.ModeKubeconfig)))
	e.FlagSet.Var((*modeValue)(&c.Cluster.Mode), envflag.Name("KUBE_AUTH"),
		envflag.Usage("KUBE_AUTH", "how to reach Kubernetes: kubeconfig, in-cluster, eks, or none (render only)"))
	e.String(&c.Cluster.Kubeconfig, "KUBECONFIG", "", "kubeconfig file(s) for KUBE_AUTH=kubeconfig (default ~/.kube/config)")
	e.String(&c.Cluster.Context, "KUBE_CONTEXT", "", "kubeconfig context (default: the file's current context)")
	e.String(&c.Cluster.ClusterName, "KUBE_CLUSTER_NAME", "", "EKS cluster name for KUBE_AUTH=eks")
	region := e.Getenv("AWS_REGION")
	if region == "" {
		region = e.Getenv("AWS_DEFAULT_REGION")
	}
	e.FlagSet.StringVar(&c.Cluster.Region, envflag.Name("AWS_REGION"), region, envflag.Usage("AWS_REGION or AWS_DEFAULT_REGION", "EKS cluster region"))
	e.Duration(&c.Cluster.Timeout, "KUBE_TIMEOUT", cluster.DefaultTimeout, "limit of one Kubernetes API request")
	e.List(&c.ApplyAllowedKinds, "APPLY_ALLOWED_KINDS", "otherwise refused kinds to allow (Kind or group/Kind)")
	e.Bool(&c.ApplyForceConflicts, "APPLY_FORCE_CONFLICTS", false, "take over fields owned by other field managers")
	e.Duration(&c.HealthTimeout, "HEALTH_TIMEOUT", 5*time.Minute, "how long to wait for applied objects to become healthy")
	e.String(&c.NamespaceQuota, "NAMESPACE_QUOTA", "true", "ResourceQuota of chat namespaces: true, false or name=quantity,…")
	e.String(&c.NamespaceLimitRange, "NAMESPACE_LIMITRANGE", "true", "LimitRange of chat namespaces: true, false or default.cpu=…,…")
	e.String(&c.NamespaceNetworkPol, "NAMESPACE_NETWORKPOLICY", "true", "NetworkPolicy isolating chat namespaces: true or false")
	e.String(&c.NamespacePodSecurity, "NAMESPACE_POD_SECURITY", "baseline", "Pod Security level of chat namespaces: privileged, baseline, restricted or none")
}

// modeValue is the flag.Value of KUBE_AUTH.
type modeValue cluster.Mode

func (m *modeValue) String() string     { return string(*m) }
func (m *modeValue) Set(s string) error { *m = modeValue(s); return nil }

// Validate checks the settings together and reports every problem, each naming its variable.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		errs = append(errs, fmt.Errorf("LISTEN_ADDR %q: %w", c.ListenAddr, err))
	}
	if err := c.Layout.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Cluster.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateSSH(); err != nil {
		errs = append(errs, err)
	}
	for _, p := range []struct {
		msg string
		ok  bool
	}{
		{"NATS_URL must be set", c.NATSURL != ""},
		{"WORKER_ID must be 1 to 64 printable characters without spaces (the host name is the default)", validWorkerID(c.WorkerID)},
		{"CACHE_DIR must be set", c.CacheDir != ""},
		{"WORKER_CONCURRENCY must be 1 to 256", c.Concurrency >= 1 && c.Concurrency <= 256},
		{"JOB_TIMEOUT must be at least 1s", c.JobTimeout >= time.Second},
		{"SHUTDOWN_TIMEOUT must not be negative", c.ShutdownTimeout >= 0},
		{"GIT_FETCH_TIMEOUT must be at least 1s", c.GitFetchTimeout >= time.Second},
		{"GIT_MAX_FETCH_BYTES must be at least 1KiB", c.GitMaxFetchBytes >= 1<<10},
		{"RENDER_MAX_FILES must be at least 1", c.RenderLimits.MaxFiles >= 1},
		{"RENDER_MAX_FILE_BYTES must be at least 1", c.RenderLimits.MaxFileBytes >= 1},
		{"RENDER_MAX_TOTAL_BYTES must be at least RENDER_MAX_FILE_BYTES", c.RenderLimits.MaxTotalBytes >= c.RenderLimits.MaxFileBytes},
		{"RENDER_MAX_OBJECTS must be at least 1", c.RenderLimits.MaxObjects >= 1},
		{"HEALTH_TIMEOUT must be at least 1s", c.HealthTimeout >= time.Second},
		{"LOG_FORMAT must be json, text or empty", c.LogFormat == "" || c.LogFormat == "json" || c.LogFormat == "text"},
		{"LOG_LEVEL must be debug, info, warn or error", strings.Contains(" debug info warn error ", " "+c.LogLevel+" ")},
	} {
		if !p.ok {
			errs = append(errs, errors.New(p.msg))
		}
	}
	return errors.Join(errs...)
}

// validateSSH checks that an SSH key comes with a known_hosts file (host keys are always
// verified) and is not open to others.
func (c Config) validateSSH() error {
	if c.GitSSHKeyFile == "" {
		if c.GitSSHKnownHosts != "" {
			return errors.New("GIT_SSH_KNOWN_HOSTS is set but GIT_SSH_KEY_FILE is not; set both to fetch ssh:// URLs")
		}
		return nil
	}
	if c.GitSSHKnownHosts == "" {
		return errors.New("GIT_SSH_KNOWN_HOSTS must be set with GIT_SSH_KEY_FILE: SSH host keys are always verified")
	}
	info, err := os.Stat(c.GitSSHKeyFile)
	if err != nil {
		return fmt.Errorf("GIT_SSH_KEY_FILE: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o027 != 0 {
		return fmt.Errorf("GIT_SSH_KEY_FILE %s is open to others (mode %04o); run chmod 600 %s", c.GitSSHKeyFile, perm, c.GitSSHKeyFile)
	}
	if _, err := os.Stat(c.GitSSHKnownHosts); err != nil {
		return fmt.Errorf("GIT_SSH_KNOWN_HOSTS: %w", err)
	}
	return nil
}

func validWorkerID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}
