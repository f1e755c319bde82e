package eksauth

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/smithy-go"
)

// describeTimeout bounds DescribeCluster, retries included, when the caller's deadline is later.
const describeTimeout = 30 * time.Second

// ErrClusterNotFound is wrapped by DescribeCluster's error when EKS has no cluster of that name in
// the region.
var ErrClusterNotFound = errors.New("no such EKS cluster")

// LoadAWSConfig loads the SDK's default configuration for region: credentials from the
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), shared files
// (AWS_PROFILE), web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, as IRSA sets them)
// or the instance role. An empty region leaves the SDK to find one (AWS_REGION, then
// AWS_DEFAULT_REGION, then the shared config file).
func LoadAWSConfig(ctx context.Context, region string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}

// DescribeCluster returns the cluster's API endpoint (an https URL) and its CA bundle (PEM), from
// eks:DescribeCluster in cfg.Region.
func DescribeCluster(ctx context.Context, cfg aws.Config, name string) (endpoint string, caPEM []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, describeTimeout)
	defer cancel()
	out, err := eks.NewFromConfig(cfg).DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String(name)})
	if err != nil {
		return "", nil, fmt.Errorf("describe EKS cluster %s in %s: %w", name, cfg.Region, describeError(err))
	}
	endpoint, caPEM, err = clusterAccess(out.Cluster)
	if err != nil {
		return "", nil, fmt.Errorf("describe EKS cluster %s in %s: %w", name, cfg.Region, err)
	}
	return endpoint, caPEM, nil
}

// describeError adds what an operator should do to the errors that have a known cause.
func describeError(err error) error {
	var notFound *types.ResourceNotFoundException
	if errors.As(err, &notFound) {
		return fmt.Errorf("%w (check KUBE_CLUSTER_NAME and AWS_REGION): %w", ErrClusterNotFound, err)
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "AccessDeniedException" {
		return fmt.Errorf("the worker's AWS identity needs eks:DescribeCluster on this cluster: %w", err)
	}
	return err
}

func clusterAccess(c *types.Cluster) (string, []byte, error) {
	if c == nil {
		return "", nil, errors.New("the answer has no cluster")
	}
	endpoint := aws.ToString(c.Endpoint)
	if endpoint == "" {
		return "", nil, fmt.Errorf("the cluster has no API endpoint yet (status %s)", c.Status)
	}
	if u, err := url.Parse(endpoint); err != nil || u.Scheme != "https" || u.Host == "" {
		return "", nil, fmt.Errorf("the cluster's endpoint %q is not an https URL", endpoint)
	}
	if c.CertificateAuthority == nil || aws.ToString(c.CertificateAuthority.Data) == "" {
		return "", nil, fmt.Errorf("the cluster has no certificate authority data yet (status %s)", c.Status)
	}
	caPEM, err := base64.StdEncoding.DecodeString(aws.ToString(c.CertificateAuthority.Data))
	if err != nil {
		return "", nil, fmt.Errorf("decode the cluster's certificate authority data: %w", err)
	}
	if block, _ := pem.Decode(caPEM); block == nil || block.Type != "CERTIFICATE" {
		return "", nil, errors.New("the cluster's certificate authority data is not a PEM certificate")
	}
	return endpoint, caPEM, nil
}
