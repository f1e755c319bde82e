package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/backendim/brain/worker/internal/eksauth"
)

// userAgent identifies the worker in the API server's audit log.
const userAgent = "brain-worker"

// AWSConfigFunc loads the AWS SDK configuration for a region; eksauth.LoadAWSConfig is the
// default chain.
type AWSConfigFunc func(ctx context.Context, region string) (aws.Config, error)

// RESTConfig builds the client-go configuration for c.Mode. Mode none returns (nil, nil): the
// worker renders only. For eks it calls eks:DescribeCluster for the API endpoint and CA, makes a
// first token (so that missing AWS credentials show at start-up), and sets a WrapTransport that
// puts "Authorization: Bearer <token>" on every request, the token cached and refreshed by
// eksauth.TokenSource. awsCfg nil means eksauth.LoadAWSConfig.
func RESTConfig(ctx context.Context, c Config, awsCfg AWSConfigFunc) (*rest.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var (
		cfg *rest.Config
		err error
	)
	switch c.Mode {
	case ModeNone:
		return nil, nil
	case ModeKubeconfig:
		cfg, err = kubeconfigConfig(c)
	case ModeInCluster:
		cfg, err = inClusterConfig()
	case ModeEKS:
		cfg, err = eksConfig(ctx, c, awsCfg)
	}
	if err != nil {
		return nil, err
	}
	cfg.Timeout = cmp.Or(c.Timeout, DefaultTimeout)
	cfg.QPS = cmp.Or(c.QPS, DefaultQPS)
	cfg.Burst = cmp.Or(c.Burst, DefaultBurst)
	cfg.UserAgent = rest.DefaultKubernetesUserAgent() + " " + userAgent
	return cfg, nil
}

func kubeconfigConfig(c Config) (*rest.Config, error) {
	paths := c.kubeconfigPaths()
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{Precedence: paths},
		&clientcmd.ConfigOverrides{CurrentContext: c.Context},
	)
	where := strings.Join(paths, ":")
	raw, err := loader.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", where, err)
	}
	name := cmp.Or(c.Context, raw.CurrentContext)
	switch _, ok := raw.Contexts[name]; {
	case name == "":
		return nil, fmt.Errorf("kubeconfig %s has no current-context; set KUBE_CONTEXT to one of %s", where, contextNames(raw.Contexts))
	case !ok && c.Context != "":
		return nil, fmt.Errorf("KUBE_CONTEXT=%q is not a context of kubeconfig %s; it has %s", c.Context, where, contextNames(raw.Contexts))
	case !ok:
		return nil, fmt.Errorf("kubeconfig %s: current-context %q does not exist; set KUBE_CONTEXT to one of %s", where, name, contextNames(raw.Contexts))
	}
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s, context %s: %w", where, name, err)
	}
	return cfg, nil
}

func contextNames[V any](contexts map[string]V) string {
	if len(contexts) == 0 {
		return "no contexts"
	}
	return strings.Join(slices.Sorted(maps.Keys(contexts)), ", ")
}

func inClusterConfig() (*rest.Config, error) {
	cfg, err := rest.InClusterConfig()
	if errors.Is(err, rest.ErrNotInCluster) {
		return nil, fmt.Errorf("KUBE_AUTH=in-cluster: %w (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are set only inside a pod)", err)
	}
	if err != nil {
		return nil, fmt.Errorf("KUBE_AUTH=in-cluster: %w", err)
	}
	return cfg, nil
}

func eksConfig(ctx context.Context, c Config, awsCfg AWSConfigFunc) (*rest.Config, error) {
	if awsCfg == nil {
		awsCfg = eksauth.LoadAWSConfig
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(c.Timeout, DefaultTimeout))
	defer cancel()
	awsConf, err := awsCfg(ctx, c.Region)
	if err != nil {
		return nil, fmt.Errorf("KUBE_AUTH=eks: %w", err)
	}
	awsConf.Region = c.Region
	endpoint, caPEM, err := eksauth.DescribeCluster(ctx, awsConf, c.ClusterName)
	if err != nil {
		return nil, fmt.Errorf("KUBE_AUTH=eks: %w", err)
	}
	tokens := eksauth.NewTokenSource(eksauth.Options{ClusterName: c.ClusterName, Region: c.Region, AWSConfig: awsConf})
	if _, err := tokens.Token(ctx); err != nil {
		return nil, fmt.Errorf("KUBE_AUTH=eks: %w", err)
	}
	return &rest.Config{
		Host:            endpoint,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM},
		WrapTransport:   func(rt http.RoundTripper) http.RoundTripper { return &bearer{tokens: tokens, next: rt} },
	}, nil
}
