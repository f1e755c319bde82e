package kubetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// stages are the kwok stages of simulated nodes and pods, with the failures a pod label asks for.
//
//go:embed stages.yaml
var stages []byte

// Labels and annotations of pods (set them in the pod template) that make kwok simulate a failure
// instead of a healthy pod; see stages.yaml.
const (
	FailLabel          = "sim.brain.dev/fail"      // crash-loop, image-pull, never-ready or exit
	ExitCodeAnnotation = "sim.brain.dev/exit-code" // the exit code of crash-loop and exit; default 1
	MessageAnnotation  = "sim.brain.dev/message"   // the containers' termination message
)

// The failures FailLabel selects.
const (
	FailCrashLoop  = "crash-loop"
	FailImagePull  = "image-pull"
	FailNeverReady = "never-ready"
	FailExit       = "exit"
)

// Simulated nodes: NodeCount nodes named kwok-node-0, …, each with NodeCPU and NodeMemory
// allocatable, so that a pod requesting more than that is unschedulable.
const (
	NodeCount  = 2
	NodeCPU    = "16"
	NodeMemory = "64Gi"
	nodePods   = "250"
)

// kwokNodeAnnotation marks the nodes kwok manages.
const kwokNodeAnnotation = "kwok.x-k8s.io/node"

// startTimeout bounds the start of etcd and of kube-apiserver; clusterReadyTimeout the wait for
// the controllers, the scheduler and the nodes after that. Both are generous: on two busy cores
// a start takes many times its usual few seconds.
const (
	startTimeout        = 3 * time.Minute
	clusterReadyTimeout = 3 * time.Minute
)

// cluster is what runs besides etcd and kube-apiserver in a full cluster.
type cluster struct {
	components []*component
}

// startCluster starts kube-controller-manager, kube-scheduler and kwok against the API server of
// admin, creates the simulated nodes and waits until all of it works. dir holds their files; logs
// gives each component's output.
func startCluster(admin *rest.Config, assets, dir, saKey string, logs func(string) io.Writer) (*cluster, error) {
	kubeconfig := filepath.Join(dir, "components.kubeconfig")
	if err := WriteKubeconfig(kubeconfig, admin); err != nil {
		return nil, err
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, admin.CAData, 0o600); err != nil {
		return nil, fmt.Errorf("write cluster CA: %w", err)
	}
	stagesFile := filepath.Join(dir, "kwok-stages.yaml")
	if err := os.WriteFile(stagesFile, stages, 0o600); err != nil {
		return nil, fmt.Errorf("write kwok stages: %w", err)
	}
	kwokDir := filepath.Join(dir, "kwok")
	if err := os.MkdirAll(kwokDir, 0o700); err != nil {
		return nil, fmt.Errorf("kwok work dir: %w", err)
	}
	specs := []struct {
		name string
		args []string
		env  []string
	}{
		{"kube-controller-manager", []string{
			"--kubeconfig=" + kubeconfig,
			"--secure-port=0", // no listener: readiness is read from its leader lease
			"--service-account-private-key-file=" + saKey,
			"--root-ca-file=" + caFile,
			"--use-service-account-credentials=false",
			// Nothing signs certificates and no node gets a pod CIDR (kwok hands out pod IPs).
			"--controllers=*,-certificatesigningrequest-signing-controller,-node-ipam-controller",
			"--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10",
			"--leader-elect-lease-duration=60s", "--leader-elect-renew-deadline=40s", // a busy machine is slow
		}, nil},
		{"kube-scheduler", []string{
			"--kubeconfig=" + kubeconfig,
			"--authentication-kubeconfig=" + kubeconfig,
			"--authorization-kubeconfig=" + kubeconfig,
			"--secure-port=0",
			"--leader-elect-lease-duration=60s", "--leader-elect-renew-deadline=40s",
		}, nil},
		{"kwok", []string{
			"--kubeconfig=" + kubeconfig,
			"--config=" + stagesFile,
			"--manage-all-nodes=false",
			"--manage-nodes-with-annotation-selector=" + kwokNodeAnnotation + "=fake",
			"--node-ip=127.0.0.1",
			"--cidr=10.244.0.1/16",
			"--node-lease-duration-seconds=40",
		}, []string{"KWOK_WORKDIR=" + kwokDir}}, // not ~/.kwok: no configuration of the user's
	}
	c := &cluster{}
	for _, s := range specs {
		p, err := startComponent(s.name, filepath.Join(assets, s.name), s.args, s.env, logs(s.name))
		if err != nil {
			_ = c.stop()
			return nil, err
		}
		c.components = append(c.components, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadyTimeout)
	defer cancel()
	if err := c.ready(ctx, admin); err != nil {
		_ = c.stop()
		return nil, err
	}
	return c, nil
}

// ready creates the nodes and waits for the controller manager's and the scheduler's leases, the
// default ServiceAccount (the controllers work) and Ready nodes (kwok works).
func (c *cluster) ready(ctx context.Context, admin *rest.Config) error {
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return fmt.Errorf("cluster client: %w", err)
	}
	for i := range NodeCount {
		if err := createNode(ctx, cs, fmt.Sprintf("kwok-node-%d", i)); err != nil {
			return err
		}
	}
	checks := []struct {
		what string
		ok   func() (bool, error)
	}{
		{"kube-controller-manager to lead", func() (bool, error) { return leaseHeld(ctx, cs, "kube-controller-manager") }},
		{"kube-scheduler to lead", func() (bool, error) { return leaseHeld(ctx, cs, "kube-scheduler") }},
		{"the ServiceAccount controller", func() (bool, error) {
			_, err := cs.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
			return found(err)
		}},
		{"kwok to make the nodes Ready", func() (bool, error) { return nodesReady(ctx, cs) }},
	}
	for _, check := range checks {
		if err := c.poll(ctx, check.what, check.ok); err != nil {
			return err
		}
	}
	return nil
}

// poll calls ok until it reports true, a component exits, or ctx ends. The components offer
// nothing to watch, so this polls the API server.
func (c *cluster) poll(ctx context.Context, what string, ok func() (bool, error)) error {
	var last error
	for {
		for _, p := range c.components {
			if err := p.exited(); err != nil {
				return fmt.Errorf("wait for %s: %w", what, err)
			}
		}
		done, err := ok()
		if done {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last error: %v)", what, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func found(err error) (bool, error) {
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

func leaseHeld(ctx context.Context, cs kubernetes.Interface, name string) (bool, error) {
	l, err := cs.CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, name, metav1.GetOptions{})
	if ok, err := found(err); !ok {
		return false, err
	}
	return leaseHolder(l) != "", nil
}

func leaseHolder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func nodesReady(ctx context.Context, cs kubernetes.Interface) (bool, error) {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	ready := 0
	for _, n := range nodes.Items {
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return ready >= NodeCount, nil
}

// createNode creates a node for kwok to manage (it already exists when etcd's data is kept).
func createNode(ctx context.Context, cs kubernetes.Interface, name string) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(NodeCPU),
		corev1.ResourceMemory: resource.MustParse(NodeMemory),
		corev1.ResourcePods:   resource.MustParse(nodePods),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{kwokNodeAnnotation: "fake"},
			Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
				"kubernetes.io/arch": "amd64", "type": "kwok"},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}
	_, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	return nil
}

// stop stops the components, the last started first.
func (c *cluster) stop() error {
	var errs []error
	for i := len(c.components) - 1; i >= 0; i-- {
		errs = append(errs, c.components[i].stop())
	}
	return errors.Join(errs...)
}

// writeServiceAccountKey writes a new ECDSA key that the API server verifies and signs service
// account tokens with and the controller manager signs legacy token secrets with; it returns the
// paths of the private and the public key.
func writeServiceAccountKey(dir string) (string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("service account key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("service account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", fmt.Errorf("service account key: %w", err)
	}
	private, public := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(private, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", fmt.Errorf("service account key: %w", err)
	}
	if err := os.WriteFile(public, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		return "", "", fmt.Errorf("service account key: %w", err)
	}
	return private, public, nil
}
