package deploycheck

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/proto/layout"
	"github.com/backendim/brain/proto/natsauth"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	sigsyaml "sigs.k8s.io/yaml"
)

// The files of the NATS configuration of docker-compose.yml, as the nats container sees them.
const (
	composeNATSDir   = "/etc/nats"
	composeNATSConf  = composeNATSDir + "/brain.conf"
	composeNATSPerms = "deploy/compose/nats-permissions.conf"
)

// TestNATSPermissionsShipped: every shipped copy of Brain's NATS permissions is proto/natsauth's,
// so that what the gateway and the worker may do cannot drift between the code and a deployment.
func TestNATSPermissionsShipped(t *testing.T) {
	t.Parallel()
	want := natsauth.PermissionsConf()
	for file, got := range map[string]string{
		composeNATSPerms: string(readFile(t, composeNATSPerms)),
		"deploy/nats/values.yaml, ConfigMap brain-nats-permissions": helmPermissions(t, natsValues(t)),
	} {
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s is not natsauth.PermissionsConf() (-want +got); write it from there:\n%s", file, diff)
		}
	}
}

// natsConfigs are the shipped files that run NATS, each checked by a test of this file.
var natsConfigs = []string{"deploy/compose/nats.conf", "deploy/nats/values.yaml", "docker-compose.dev.yml", "docker-compose.yml"}

// TestEveryNATSConfigIsChecked: a new compose file or NATS configuration cannot slip in unchecked.
func TestEveryNATSConfigIsChecked(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	var found []string
	compose, err := filepath.Glob(filepath.Join(root, "docker-compose*.y*ml"))
	if err != nil {
		t.Fatal(err)
	}
	found = append(found, compose...)
	err = filepath.WalkDir(filepath.Join(root, "deploy"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if text := string(b); strings.Contains(text, "jetstream") && (strings.HasSuffix(p, ".conf") ||
			strings.Contains(text, "nats-server") || strings.Contains(text, "fileStore")) {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range found {
		found[i] = relToRoot(t, f)[2:]
	}
	slices.Sort(found)
	if diff := cmp.Diff(natsConfigs, found); diff != "" {
		t.Errorf("files that run NATS (-checked +found); check a new one for NATS auth here:\n%s", diff)
	}
}

// TestComposeNATSRequiresAuth: both compose files run NATS with Brain's users only, hand each
// process only its own seed, and the server their configuration makes refuses an unauthenticated
// client and a worker publishing a job, while the gateway and the worker set up their layout.
func TestComposeNATSRequiresAuth(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"docker-compose.yml", "docker-compose.dev.yml"} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			p := loadCompose(t, file)
			got := map[string][]string{}
			for name, s := range mergeServices(p.Services, p.DisabledServices) { // nats-box has a profile
				for _, sec := range s.Secrets {
					target := cmpOr(sec.Target, "/run/secrets/"+sec.Source)
					got[name] = append(got[name], sec.Source+":"+target)
				}
				for _, k := range []string{"NATS_NKEY_FILE", "NATS_CREDS_FILE", "NATS_NKEY", "NATS_URL", "NATS_EMBEDDED"} {
					if v := s.Environment[k]; v != nil {
						got[name] = append(got[name], k+"="+*v)
					}
				}
				if slices.Contains(s.Command, "nats-server") {
					got[name] = append(got[name], "command="+strings.Join(s.Command, " "))
					for _, v := range s.Volumes {
						got[name] = append(got[name], "mount="+relToRoot(t, v.Source)+":"+v.Target)
					}
				}
				slices.Sort(got[name])
			}
			for name, sec := range p.Secrets {
				got["secret "+name] = []string{relToRoot(t, sec.File)}
			}
			want := map[string][]string{
				"nats": {"command=nats-server --config " + composeNATSConf, "mount=./deploy/compose/nats-permissions.conf:" + composeNATSDir + "/" + natsauth.PermissionsFile,
					"mount=./deploy/compose/nats.conf:" + composeNATSConf, "mount=nats-data:/data",
					"nats-users:" + composeNATSDir + "/" + natsauth.UsersFile},
				"gateway":                  {"NATS_NKEY_FILE=/run/secrets/nats-gateway-seed", "NATS_URL=nats://nats:4222", "nats-gateway-seed:/run/secrets/nats-gateway-seed"},
				"worker":                   {"NATS_NKEY_FILE=/run/secrets/nats-worker-seed", "NATS_URL=nats://nats:4222", "nats-worker-seed:/run/secrets/nats-worker-seed"},
				"nats-box":                 {"NATS_NKEY=/run/secrets/nats-admin-seed", "NATS_URL=nats://nats:4222", "nats-admin-seed:/run/secrets/nats-admin-seed"},
				"secret nats-users":        {"./data/secrets/nats/" + natsauth.UsersFile},
				"secret nats-gateway-seed": {"./data/secrets/nats/gateway.nk"},
				"secret nats-worker-seed":  {"./data/secrets/nats/worker.nk"},
				"secret nats-admin-seed":   {"./data/secrets/nats/admin.nk"},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("NATS wiring (-want +got):\n%s", diff)
			}
		})
	}

	// The server of deploy/compose/nats.conf, with the files laid out as the nats container has them.
	dir := filepath.Join(t.TempDir(), "etc", "nats")
	keys := writeNATSFiles(t, dir, string(readFile(t, "deploy/compose/nats.conf")), string(readFile(t, composeNATSPerms)))
	opts := natsOptions(t, filepath.Join(dir, "brain.conf"), keys)
	checkNATSServer(t, opts, filepath.Dir(keys[0].File), true)
}

// TestHelmNATSRequiresAuth: deploy/nats/values.yaml makes the chart's NATS include Brain's users
// file from the Secret brain-nats-users next to the permissions, reload on changes of either, give
// nats-box the admin's seed; the configuration the chart renders admits only those users.
func TestHelmNATSRequiresAuth(t *testing.T) {
	t.Parallel()
	values := natsValues(t)
	include, _, _ := unstructured.NestedString(values, "config", "merge", "authorization", "$include")
	authDir := path.Dir(path.Clean("/etc/nats-config/" + include))
	got := map[string]string{
		"include":            path.Base(include),
		"nats container":     jsonOf(t, values, "container", "patch"),
		"volume":             jsonOf(t, values, "podTemplate", "patch"),
		"reloader":           jsonOf(t, values, "reloader", "patch"),
		"nats-box nkey":      jsonOf(t, values, "natsBox", "contexts", "default", "nkey"),
		"permissions mapped": helmPermissionsName(t, values),
	}
	want := map[string]string{
		"include":        natsauth.UsersFile,
		"nats container": `[{"op":"add","path":"/volumeMounts/-","value":{"mountPath":"` + authDir + `","name":"brain-nats-auth","readOnly":true}}]`,
		"volume": `[{"op":"add","path":"/spec/volumes/-","value":{"name":"brain-nats-auth","projected":{"sources":[` +
			`{"secret":{"name":"brain-nats-users"}},{"configMap":{"name":"brain-nats-permissions"}}]}}}]`,
		"reloader":           `[{"op":"add","path":"/args/-","value":"-config"},{"op":"add","path":"/args/-","value":"` + authDir + "/" + natsauth.PermissionsFile + `"}]`,
		"nats-box nkey":      `{"key":"admin.nk","secretName":"brain-nats-admin"}`,
		"permissions mapped": "brain-nats-permissions/" + natsauth.PermissionsFile,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}

	// nats.conf as the chart renders config.merge, in /etc/nats-config; the projected volume in authDir.
	root := t.TempDir()
	merge, _, _ := unstructured.NestedMap(values, "config", "merge")
	conf := filepath.Join(root, "etc", "nats-config", "nats.conf")
	if err := os.MkdirAll(filepath.Dir(conf), 0o700); err != nil {
		t.Fatal(err)
	}
	keys := writeNATSFiles(t, filepath.Join(root, filepath.FromSlash(authDir)), "", helmPermissions(t, values))
	if err := os.WriteFile(conf, []byte(chartConf(t, merge)), 0o600); err != nil {
		t.Fatal(err)
	}
	checkNATSServer(t, natsOptions(t, conf, keys), filepath.Dir(keys[0].File), false)
}

func mergeServices(ms ...types.Services) types.Services {
	out := types.Services{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// relToRoot spells a compose source path as the compose file does: ./… from the repository root.
func relToRoot(t *testing.T, src string) string {
	t.Helper()
	if rel, err := filepath.Rel(repoRoot(t), src); err == nil && !strings.HasPrefix(rel, "..") && filepath.IsAbs(src) {
		return "./" + filepath.ToSlash(rel)
	}
	return src
}

func natsValues(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := sigsyaml.Unmarshal(readFile(t, "deploy/nats/values.yaml"), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// helmExtra returns the chart's extra resource of kind and name.
func helmExtra(t *testing.T, values map[string]any, kind, name string) map[string]any {
	t.Helper()
	extra, _, _ := unstructured.NestedSlice(values, "extraResources")
	for _, e := range extra {
		o := e.(map[string]any)
		if n, _, _ := unstructured.NestedString(o, "metadata", "name"); o["kind"] == kind && n == name {
			return o
		}
	}
	t.Fatalf("deploy/nats/values.yaml: no extraResources %s/%s", kind, name)
	return nil
}

func helmPermissions(t *testing.T, values map[string]any) string {
	t.Helper()
	s, _, _ := unstructured.NestedString(helmExtra(t, values, "ConfigMap", "brain-nats-permissions"), "data", natsauth.PermissionsFile)
	return s
}

func helmPermissionsName(t *testing.T, values map[string]any) string {
	t.Helper()
	cm := helmExtra(t, values, "ConfigMap", "brain-nats-permissions")
	data, _, _ := unstructured.NestedStringMap(cm, "data")
	var keys []string
	for k := range data {
		keys = append(keys, "brain-nats-permissions/"+k)
	}
	return strings.Join(keys, ",")
}

func jsonOf(t *testing.T, values map[string]any, fields ...string) string {
	t.Helper()
	v, ok, _ := unstructured.NestedFieldNoCopy(values, fields...)
	if !ok {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// chartConf renders config.merge the way the chart's nats.formatConfig does: raw JSON in which
// a key ending in $include becomes an include directive and "<< x >>" becomes x, unquoted.
func chartConf(t *testing.T, merge map[string]any) string {
	t.Helper()
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(merge); err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`".*\$include": "(.*)",?`).ReplaceAllString(b.String(), "include ${1};")
	return regexp.MustCompile(`"<<\s+(.*?)\s+>>"`).ReplaceAllString(s, "${1}")
}

// writeNATSFiles writes, into dir, conf as brain.conf (unless empty), the permissions file, and
// the users file of new seeds (in dir/keys) as `gateway nats-keys` writes it.
func writeNATSFiles(t *testing.T, dir, conf, permissions string) []natsauth.Key {
	t.Helper()
	keys, err := natsauth.EnsureSeeds(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{natsauth.UsersFile: natsauth.UsersConf(keys), natsauth.PermissionsFile: permissions}
	if conf != "" {
		files["brain.conf"] = conf
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// natsOptions parses a NATS configuration file as nats-server does and checks that it admits
// exactly keys, each with its role's permissions from natsauth, and no one else.
func natsOptions(t *testing.T, conf string, keys []natsauth.Key) *server.Options {
	t.Helper()
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server would not start: %v", err)
	}
	type user struct{ Publish, Subscribe []string }
	want, got := map[string]*user{}, map[string]*user{}
	for _, k := range keys {
		if p, limited := natsauth.For(k.Role); limited {
			want[k.Public] = &user{p.Publish, p.Subscribe}
		} else {
			want[k.Public] = nil
		}
	}
	for _, u := range opts.Nkeys {
		got[u.Nkey] = nil
		if p := u.Permissions; p != nil && p.Publish != nil && p.Subscribe != nil {
			got[u.Nkey] = &user{p.Publish.Allow, p.Subscribe.Allow}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: users (-want +got):\n%s", conf, diff)
	}
	if opts.NoAuthUser != "" || opts.Username != "" || opts.Authorization != "" || len(opts.Users) != 0 {
		t.Errorf("%s: another way in: no_auth_user %q, user %q, token %q, %d users", conf, opts.NoAuthUser,
			opts.Username, opts.Authorization, len(opts.Users))
	}
	return opts
}

// checkNATSServer runs the server of opts on 127.0.0.1 and attacks it: no credentials, and a
// worker publishing a job, are refused. With jetStream, the gateway and the worker also set up
// Brain's layout with their own identities, which their permissions must allow.
func checkNATSServer(t *testing.T, opts *server.Options, seeds string, jetStream bool) {
	t.Helper()
	opts.JetStream = jetStream
	ns := startNATS(t, opts)
	if nc, err := nats.Connect(ns.ClientURL()); !errors.Is(err, nats.ErrAuthorization) {
		if err == nil {
			nc.Close()
		}
		t.Errorf("connect without credentials: %v, want an authorization violation", err)
	}
	refused := make(chan error, 10)
	w, err := natsauth.Connect(natsauth.Worker, ns.ClientURL(), natsauth.SeedFile(seeds, natsauth.Worker), "",
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { refused <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Publish(proto.JobSubject("bob", "victimchat"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-refused:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("worker publishing a job: %v, want a permission violation", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the worker published a job")
	}
	if !jetStream {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range []natsauth.Role{natsauth.Gateway, natsauth.Worker} {
		if err := setUpLayout(ctx, ns.ClientURL(), natsauth.SeedFile(seeds, r), r); err != nil {
			t.Errorf("%s sets up its layout: %v", r, err)
		}
	}
}

// startNATS runs the server of a shipped configuration on 127.0.0.1, without monitoring, with its
// storage in a temporary directory.
func startNATS(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	localize(opts, t.TempDir())
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return ns
}

// localize moves a shipped configuration's listeners to 127.0.0.1 and its storage to store.
func localize(opts *server.Options, store string) {
	opts.Host, opts.Port, opts.HTTPPort, opts.Cluster.Port = "127.0.0.1", -1, 0, 0
	opts.StoreDir, opts.NoSigs, opts.NoLog, opts.JetStreamMaxStore = store, true, true, 1<<30
}

// setUpLayout does what role's process does at start: ensure its streams, buckets and consumer.
func setUpLayout(ctx context.Context, url, seed string, r natsauth.Role) error {
	nc, err := natsauth.Connect(r, url, seed, "")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	c := layout.Defaults()
	if _, err := layout.Shared(ctx, js, c); err != nil || r != natsauth.Worker {
		return err
	}
	if _, err := layout.Locks(ctx, js, c); err != nil {
		return err
	}
	_, err = layout.Workers(ctx, js, c)
	return err
}

// TestNATSNetworkPolicy: the nats namespace admits Brain's gateways and workers to the client port,
// Prometheus and KEDA to the monitoring ports, NATS's own pods everywhere, and nobody else — no
// chat's pod, whatever its labels.
func TestNATSNetworkPolicy(t *testing.T) {
	t.Parallel()
	var pol networkingv1.NetworkPolicy
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(helmExtra(t, natsValues(t), "NetworkPolicy", "nats"), &pol); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pol.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) || len(pol.Spec.PodSelector.MatchLabels)+len(pol.Spec.PodSelector.MatchExpressions) != 0 {
		t.Fatalf("the policy must guard the ingress of every pod of the namespace: %+v", pol.Spec)
	}
	gw, wk := map[string]string{"app.kubernetes.io/name": "brain-gateway"}, map[string]string{"app.kubernetes.io/name": "brain-worker"}
	tests := []struct {
		from      string
		namespace string
		labels    map[string]string
		port      int32
		allowed   bool
	}{
		{"a gateway", "brain", gw, 4222, true},
		{"a worker", "brain", wk, 4222, true},
		{"a gateway to the monitoring port", "brain", gw, 8222, false},
		{"a worker to the cluster port", "brain", wk, 6222, false},
		{"another pod of brain", "brain", map[string]string{"app.kubernetes.io/name": "debug"}, 4222, false},
		{"a chat's pod", "im-victimchat-bob", map[string]string{"app": "web"}, 4222, false},
		{"a chat's pod labelled as a gateway", "im-c1-mallory", gw, 4222, false},
		{"a chat's pod to the monitoring port", "im-c1-mallory", gw, 8222, false},
		{"a chat's pod to the cluster port", "im-c1-mallory", map[string]string{}, 6222, false},
		{"Prometheus to the exporter", "monitoring", map[string]string{}, 7777, true},
		{"Prometheus to the monitoring port", "monitoring", map[string]string{}, 8222, true},
		{"Prometheus to the client port", "monitoring", map[string]string{}, 4222, false},
		{"KEDA to the monitoring port", "keda", map[string]string{}, 8222, true},
		{"KEDA to the client port", "keda", map[string]string{}, 4222, false},
		{"another NATS server", "nats", map[string]string{"app.kubernetes.io/name": "nats"}, 6222, true},
		{"nats-box", "nats", map[string]string{"app.kubernetes.io/name": "nats-box"}, 4222, true},
	}
	for _, tt := range tests {
		t.Run(tt.from, func(t *testing.T) {
			if got := admits(t, pol, "nats", tt.namespace, tt.labels, tt.port); got != tt.allowed {
				t.Errorf("admitted = %v, want %v", got, tt.allowed)
			}
		})
	}
}

// admits evaluates an ingress NetworkPolicy of namespace home for a TCP connection from a pod with
// labels in namespace ns (whose only label is its name, as on a cluster) to port.
func admits(t *testing.T, pol networkingv1.NetworkPolicy, home, ns string, labels map[string]string, port int32) bool {
	t.Helper()
	matches := func(sel *metav1.LabelSelector, l map[string]string) bool {
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			t.Fatal(err)
		}
		return s.Matches(k8slabels.Set(l))
	}
	nsLabels := map[string]string{"kubernetes.io/metadata.name": ns}
	for _, rule := range pol.Spec.Ingress {
		portOK := len(rule.Ports) == 0
		for _, p := range rule.Ports {
			portOK = portOK || (p.Port != nil && p.Port.IntVal == port && (p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP))
		}
		for _, peer := range rule.From {
			nsOK := ns == home
			if peer.NamespaceSelector != nil {
				nsOK = matches(peer.NamespaceSelector, nsLabels)
			}
			podOK := peer.PodSelector == nil || matches(peer.PodSelector, labels)
			if portOK && nsOK && podOK && peer.IPBlock == nil {
				return true
			}
		}
	}
	return false
}

// TestKubernetesNATSIdentities: the gateway and the worker each mount only their own seed, from
// the Secret brain-nats-<role>, where NATS_NKEY_FILE points, readable by their group.
func TestKubernetesNATSIdentities(t *testing.T) {
	t.Parallel()
	got := map[string]string{}
	for _, o := range kustomizeBuild(t, "deploy/kubernetes/base") {
		if o.GetKind() != "Deployment" {
			continue
		}
		pod, _, _ := unstructured.NestedMap(o.Object, "spec", "template", "spec")
		var spec corev1.PodSpec
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(pod, &spec); err != nil {
			t.Fatal(err)
		}
		secrets := map[string]string{}
		for _, v := range spec.Volumes {
			if v.Secret != nil && strings.HasPrefix(v.Secret.SecretName, "brain-nats-") {
				secrets[v.Name] = v.Secret.SecretName
			}
		}
		for _, c := range spec.Containers {
			var file string
			for _, e := range c.Env {
				if e.Name == "NATS_NKEY_FILE" {
					file = e.Value
				}
			}
			var mounted []string
			for _, m := range c.VolumeMounts {
				if s, ok := secrets[m.Name]; ok {
					mounted = append(mounted, s+" at "+m.MountPath)
				}
			}
			group := spec.SecurityContext != nil && spec.SecurityContext.FSGroup != nil && *spec.SecurityContext.FSGroup == 65532
			got[o.GetName()] = "NATS_NKEY_FILE=" + file + "; " + strings.Join(mounted, ", ") + "; fsGroup 65532: " + strconv.FormatBool(group)
		}
	}
	want := map[string]string{
		"brain-gateway": "NATS_NKEY_FILE=/run/brain/nats/gateway.nk; brain-nats-gateway at /run/brain/nats; fsGroup 65532: true",
		"brain-worker":  "NATS_NKEY_FILE=/run/brain/nats/worker.nk; brain-nats-worker at /run/brain/nats; fsGroup 65532: true",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NATS identities (-want +got):\n%s", diff)
	}
}

// TestNATSKeyRotation follows docs/operations.md, "Rotate NATS keys", on the server of
// deploy/compose/nats.conf: while NATS lists the old and the new key of the gateway, a gateway
// connected with the old one stays connected and one with the new one gets in; once the old key
// is removed, its connection is closed and it cannot come back.
func TestNATSKeyRotation(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "etc", "nats")
	keys := writeNATSFiles(t, dir, string(readFile(t, "deploy/compose/nats.conf")), string(readFile(t, composeNATSPerms)))
	seeds := filepath.Dir(keys[0].File)
	conf := filepath.Join(dir, "brain.conf")
	opts := natsOptions(t, conf, keys)
	ns := startNATS(t, opts)
	reload := func() {
		t.Helper()
		keys, err := natsauth.Keys(seeds)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, natsauth.UsersFile), []byte(natsauth.UsersConf(keys)), 0o600); err != nil {
			t.Fatal(err)
		}
		next := natsOptions(t, conf, keys)
		localize(next, opts.StoreDir)
		if err := ns.ReloadOptions(next); err != nil {
			t.Fatalf("reload: %v", err)
		}
	}
	closed := make(chan struct{}, 1)
	connect := func(seed string) (*nats.Conn, error) {
		return natsauth.Connect(natsauth.Gateway, ns.ClientURL(), seed, "", nats.NoReconnect(),
			nats.ClosedHandler(func(*nats.Conn) {
				select {
				case closed <- struct{}{}:
				default:
				}
			}))
	}
	old := filepath.Join(seeds, "gateway.old.nk")
	if err := os.Rename(natsauth.SeedFile(seeds, natsauth.Gateway), old); err != nil {
		t.Fatal(err)
	}
	before, err := connect(old)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	// 1. A new seed beside the old one. 2. NATS reloads users.conf. 3. A gateway with the new seed.
	if _, err := natsauth.EnsureSeeds(seeds); err != nil {
		t.Fatal(err)
	}
	reload()
	after, err := connect(natsauth.SeedFile(seeds, natsauth.Gateway))
	if err != nil {
		t.Fatalf("the new key: %v", err)
	}
	defer after.Close()
	if err := before.Flush(); err != nil || !before.IsConnected() {
		t.Fatalf("the old key's connection after the new key was added: %v, %v", before.Status(), err)
	}
	// 4. The old seed leaves the directory, NATS reloads users.conf.
	retired := filepath.Join(t.TempDir(), "gateway.old.nk")
	if err := os.Rename(old, retired); err != nil {
		t.Fatal(err)
	}
	reload()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the old key's connection is still open")
	}
	if nc, err := connect(retired); !errors.Is(err, nats.ErrAuthorization) {
		if err == nil {
			nc.Close()
		}
		t.Errorf("the old key after the rotation: %v, want an authorization violation", err)
	}
	if err := after.Flush(); err != nil {
		t.Errorf("the new key's connection: %v", err)
	}
	if nc, err := natsauth.Connect(natsauth.Gateway, ns.ClientURL(), natsauth.SeedFile(seeds, natsauth.Gateway), ""); err != nil {
		t.Errorf("the new key after the rotation: %v", err)
	} else {
		nc.Close()
	}
}
