// Package cluster turns the operator's KUBE_AUTH setting into a client-go *rest.Config: a
// kubeconfig file (KUBECONFIG, optional KUBE_CONTEXT), the pod's service account (in-cluster),
// Amazon EKS credentials made in-process from the AWS SDK's default chain (eks), or no cluster at
// all (none: the worker only renders).
package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Mode is a way of reaching the Kubernetes API, from KUBE_AUTH.
type Mode string

// The modes of KUBE_AUTH.
const (
	ModeKubeconfig Mode = "kubeconfig" // KUBECONFIG (a ':'-separated list, like kubectl) and KUBE_CONTEXT
	ModeInCluster  Mode = "in-cluster" // the pod's service account token and CA
	ModeEKS        Mode = "eks"        // KUBE_CLUSTER_NAME and AWS_REGION, AWS credentials from the SDK chain
	ModeNone       Mode = "none"       // no cluster: jobs render only
)

// Defaults applied by RESTConfig to zero fields.
const (
	DefaultTimeout = 30 * time.Second // KUBE_TIMEOUT
	// DefaultQPS and DefaultBurst replace client-go's 5 and 10, which would throttle a deploy of
	// a few dozen objects.
	DefaultQPS   = 200
	DefaultBurst = 400
)

// Config says how to reach the cluster.
type Config struct {
	Mode Mode // KUBE_AUTH
	// Kubeconfig is one or more kubeconfig files separated by the OS list separator (':' on
	// Unix), merged as kubectl does; empty means ~/.kube/config. Mode kubeconfig only.
	Kubeconfig string
	// Context is the kubeconfig context to use; empty means the file's current-context.
	Context string
	// ClusterName and Region name the EKS cluster (KUBE_CLUSTER_NAME, AWS_REGION or
	// AWS_DEFAULT_REGION). Mode eks only.
	ClusterName, Region string
	// Timeout bounds every request to the API server (KUBE_TIMEOUT); zero means DefaultTimeout.
	Timeout time.Duration
	// QPS and Burst limit the client's request rate; zero means DefaultQPS and DefaultBurst.
	QPS   float32
	Burst int
}

// eksClusterName is EKS's rule for cluster names.
var eksClusterName = regexp.MustCompile(`^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$`)

// Validate reports the first setting that cannot work, naming the environment variable to fix.
func (c Config) Validate() error {
	if c.Timeout < 0 {
		return fmt.Errorf("KUBE_TIMEOUT is %s; it must not be negative", c.Timeout)
	}
	if c.QPS < 0 || c.Burst < 0 {
		return fmt.Errorf("the Kubernetes client's QPS (%g) and burst (%d) must not be negative", c.QPS, c.Burst)
	}
	switch c.Mode {
	case ModeKubeconfig:
		return c.validateKubeconfig()
	case ModeEKS:
		return c.validateEKS()
	case ModeInCluster, ModeNone:
		return nil
	case "":
		return errors.New("KUBE_AUTH is empty; set it to kubeconfig, in-cluster, eks or none")
	default:
		return fmt.Errorf("KUBE_AUTH=%q is not one of kubeconfig, in-cluster, eks, none", string(c.Mode))
	}
}

func (c Config) validateEKS() error {
	switch {
	case c.ClusterName == "":
		return errors.New("KUBE_AUTH=eks needs KUBE_CLUSTER_NAME, the name of the EKS cluster")
	case !eksClusterName.MatchString(c.ClusterName):
		return fmt.Errorf("KUBE_CLUSTER_NAME=%q is not an EKS cluster name (letters, digits, '-' and '_', at most 100, starting with a letter or digit)", c.ClusterName)
	case c.Region == "":
		return errors.New("KUBE_AUTH=eks needs AWS_REGION (or AWS_DEFAULT_REGION), the cluster's region")
	}
	return nil
}

// validateKubeconfig requires at least one of the listed files to exist; like kubectl, missing
// files in a list are skipped.
func (c Config) validateKubeconfig() error {
	paths := c.kubeconfigPaths()
	if len(paths) == 0 {
		return errors.New("KUBE_AUTH=kubeconfig needs KUBECONFIG, or a home directory holding .kube/config")
	}
	var missing []string
	for _, p := range paths {
		info, err := os.Stat(p)
		switch {
		case err == nil && info.IsDir():
			return fmt.Errorf("KUBECONFIG names %s, which is a directory, not a kubeconfig file", p)
		case err == nil:
			return nil
		case errors.Is(err, os.ErrNotExist):
			missing = append(missing, p)
		default:
			return fmt.Errorf("KUBECONFIG names %s: %w", p, err)
		}
	}
	if c.Kubeconfig == "" {
		return fmt.Errorf("KUBE_AUTH=kubeconfig: KUBECONFIG is not set and %s does not exist", missing[0])
	}
	return fmt.Errorf("KUBECONFIG names %s, which does not exist", strings.Join(missing, ", "))
}

// kubeconfigPaths lists the kubeconfig files to merge, in precedence order.
func (c Config) kubeconfigPaths() []string {
	if c.Kubeconfig == "" {
		home, err := os.UserHomeDir()
		if err != nil || home == "" {
			return nil
		}
		return []string{filepath.Join(home, ".kube", "config")}
	}
	var paths []string
	for _, p := range filepath.SplitList(c.Kubeconfig) {
		if p != "" {
			paths = append(paths, p)
		}
	}
	return paths
}
