package deploycheck

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/google/go-cmp/cmp"
)

// loadCompose loads a compose file of the repository the way `docker compose` does, with
// .env.example as the .env file and nothing from the test's own environment.
func loadCompose(t *testing.T, file string) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, file)},
		cli.WithWorkingDirectory(root),
		cli.WithEnvFiles(filepath.Join(root, ".env.example")),
		cli.WithDotEnv,
	)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load %s with .env.example: %v", file, err)
	}
	return p
}

// composeFacts is what matters about a compose project, in a form that diffs well.
type composeFacts struct {
	Services       []string
	Disabled       []string            // services behind a profile
	Published      map[string][]string // service → "host_ip:published->target"
	ContainerNames map[string]string
	Users          map[string]string
	DependsOn      map[string][]string // service → "dependency:condition"
	Networks       map[string][]string // service → networks
	Internal       []string            // networks with internal: true
	Volumes        []string            // named volumes
	Mounts         map[string][]string // service → "source:target[:ro]" (sources relative to the root)
}

func factsOf(root string, p *types.Project) composeFacts {
	f := composeFacts{
		Services: p.ServiceNames(), Disabled: p.DisabledServiceNames(), Published: map[string][]string{},
		ContainerNames: map[string]string{}, Users: map[string]string{}, DependsOn: map[string][]string{},
		Networks: map[string][]string{}, Volumes: p.VolumeNames(), Mounts: map[string][]string{},
	}
	for name, n := range p.Networks {
		if n.Internal {
			f.Internal = append(f.Internal, name)
		}
	}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			f.Published[name] = append(f.Published[name], fmt.Sprintf("%s:%s->%d", port.HostIP, port.Published, port.Target))
		}
		if s.ContainerName != "" {
			f.ContainerNames[name] = s.ContainerName
		}
		f.Users[name] = s.User
		for dep, d := range s.DependsOn {
			f.DependsOn[name] = append(f.DependsOn[name], dep+":"+d.Condition)
		}
		for n := range s.Networks {
			f.Networks[name] = append(f.Networks[name], n)
		}
		for _, v := range s.Volumes {
			src := v.Source
			if rel, err := filepath.Rel(root, src); err == nil && v.Type == types.VolumeTypeBind && !strings.HasPrefix(rel, "..") {
				src = "./" + filepath.ToSlash(rel)
			}
			m := src + ":" + v.Target
			if v.ReadOnly {
				m += ":ro"
			}
			f.Mounts[name] = append(f.Mounts[name], m)
		}
	}
	for _, l := range [][]string{f.Services, f.Disabled, f.Internal, f.Volumes} {
		sort.Strings(l)
	}
	for _, m := range []map[string][]string{f.Published, f.DependsOn, f.Networks, f.Mounts} {
		for _, l := range m {
			sort.Strings(l)
		}
	}
	return f
}

func TestComposeFiles(t *testing.T) {
	t.Parallel()
	nonroot := map[string]string{"docker-proxy": "65534:999", "gateway": "65532:65532", "nats": "65532:65532",
		"traefik": "65532:65532", "worker": "65532:65532"}
	tests := []struct {
		file string
		want composeFacts
	}{
		{"docker-compose.yml", composeFacts{
			Services:       []string{"docker-proxy", "gateway", "nats", "traefik", "worker"},
			Disabled:       []string{"nats-box"},
			Published:      map[string][]string{"traefik": {":443->443", ":80->80"}},
			ContainerNames: map[string]string{},
			Users:          nonroot,
			DependsOn: map[string][]string{"gateway": {"nats:service_healthy"}, "worker": {"nats:service_healthy"},
				"traefik": {"docker-proxy:service_healthy"}},
			Networks: map[string][]string{"docker-proxy": {"docker-api"}, "gateway": {"edge", "internal"},
				"nats": {"internal"}, "traefik": {"docker-api", "edge"}, "worker": {"egress", "internal"}},
			Internal: []string{"docker-api", "internal"},
			Volumes:  []string{"acme", "nats-data", "repo-cache"},
			Mounts: map[string][]string{
				"docker-proxy": {"/var/run/docker.sock:/var/run/docker.sock:ro"},
				"gateway":      {"./data/secrets/gateway:/run/brain:ro"},
				"nats":         {"./deploy/compose/nats-permissions.conf:/etc/nats/permissions.conf:ro", "./deploy/compose/nats.conf:/etc/nats/brain.conf:ro", "nats-data:/data"},
				"traefik":      {"./traefik/dynamic:/etc/traefik/dynamic:ro", "acme:/letsencrypt"},
				"worker": {"./data/secrets/aws:/home/nonroot/.aws:ro", "./data/secrets/git:/run/brain/git:ro",
					"./data/secrets/kube:/home/nonroot/.kube:ro", "repo-cache:/var/lib/brain/cache"},
			},
		}},
		{"docker-compose.dev.yml", composeFacts{
			Services:       []string{"docker-proxy", "gateway", "nats", "traefik", "worker"},
			Disabled:       []string{"nats-box"},
			Published:      map[string][]string{"traefik": {"127.0.0.1:8080->80"}},
			ContainerNames: map[string]string{},
			Users:          nonroot,
			DependsOn: map[string][]string{"gateway": {"nats:service_healthy"}, "worker": {"nats:service_healthy"},
				"traefik": {"docker-proxy:service_healthy"}},
			Networks: map[string][]string{"docker-proxy": {"docker-api"}, "gateway": {"edge", "internal"},
				"nats": {"internal"}, "traefik": {"docker-api", "edge"}, "worker": {"egress", "internal"}},
			Internal: []string{"docker-api", "internal"},
			Volumes:  []string{"nats-data", "repo-cache"},
			Mounts: map[string][]string{
				"docker-proxy": {"/var/run/docker.sock:/var/run/docker.sock:ro"},
				"nats":         {"./deploy/compose/nats-permissions.conf:/etc/nats/permissions.conf:ro", "./deploy/compose/nats.conf:/etc/nats/brain.conf:ro", "nats-data:/data"},
				"traefik":      {"./traefik/dev.yml:/etc/traefik/traefik.yml:ro"},
				"worker":       {"./data/secrets/kube:/home/nonroot/.kube:ro", "repo-cache:/var/lib/brain/cache"},
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			p := loadCompose(t, tt.file)
			if diff := cmp.Diff(tt.want, factsOf(repoRoot(t), p)); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.file, diff)
			}
			checkServices(t, p)
		})
	}
}

// checkServices holds every service of a project to the rules that do not depend on the service.
func checkServices(t *testing.T, p *types.Project) {
	t.Helper()
	for name, s := range p.Services {
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 || s.HealthCheck.Test[0] != "CMD" {
			t.Errorf("%s: needs an exec-form healthcheck (no shell in the images), got %+v", name, s.HealthCheck)
		}
		if uid, _, _ := strings.Cut(s.User, ":"); uid == "" || uid == "0" || uid == "root" {
			t.Errorf("%s: runs as %q, want a non-root uid", name, s.User)
		}
		if !s.ReadOnly {
			t.Errorf("%s: root filesystem is writable, want read_only: true", name)
		}
		if !slices.Equal(s.CapDrop, []string{"ALL"}) || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: cap_drop %v, security_opt %v: want ALL dropped and no-new-privileges", name, s.CapDrop, s.SecurityOpt)
		}
		if s.Restart != types.RestartPolicyUnlessStopped {
			t.Errorf("%s: restart %q, want %q", name, s.Restart, types.RestartPolicyUnlessStopped)
		}
		if r := s.Deploy; r == nil || r.Resources.Limits == nil || r.Resources.Reservations == nil ||
			r.Resources.Limits.NanoCPUs <= 0 || r.Resources.Limits.MemoryBytes <= 0 ||
			r.Resources.Reservations.NanoCPUs <= 0 || r.Resources.Reservations.MemoryBytes <= 0 {
			t.Errorf("%s: needs cpu and memory limits and reservations", name)
		}
		if s.Build == nil {
			checkPinned(t, name, s.Image)
		}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind && !v.ReadOnly {
				t.Errorf("%s: bind mount %s is writable, want :ro", name, v.Target)
			}
		}
	}
}

// checkPinned fails unless image names an exact version tag. Distroless publishes no version tags:
// its pin is the Debian release in the image name plus the variant tag (never latest).
func checkPinned(t *testing.T, what, image string) {
	t.Helper()
	name, tag, ok := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
	distroless := strings.HasPrefix(image, "gcr.io/distroless/") && regexp.MustCompile(`-debian\d+$`).MatchString(name)
	switch {
	case ok && regexp.MustCompile(`^v?\d+\.\d+\.\d+`).MatchString(tag):
	case ok && distroless && tag == "nonroot":
	default:
		t.Errorf("%s: image %q is not pinned to an exact version tag", what, image)
	}
}

func TestComposeGatewayRoute(t *testing.T) {
	t.Parallel()
	gw, err := loadCompose(t, "docker-compose.yml").GetService("gateway")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"traefik.enable":                                                "true",
		"traefik.docker.network":                                        "brain-edge",
		"traefik.http.routers.brain.rule":                               "Host(`gitops.example.com`) && Path(`/ws`)",
		"traefik.http.routers.brain.entrypoints":                        "websecure",
		"traefik.http.routers.brain.middlewares":                        "brain-ws@file",
		"traefik.http.routers.brain.service":                            "brain",
		"traefik.http.services.brain.loadbalancer.server.port":          "8080",
		"traefik.http.services.brain.loadbalancer.serverstransport":     "brain-gateway@file",
		"traefik.http.services.brain.loadbalancer.healthcheck.path":     "/ready",
		"traefik.http.services.brain.loadbalancer.healthcheck.interval": "5s",
		"traefik.http.services.brain.loadbalancer.healthcheck.timeout":  "2s",
	}
	if diff := cmp.Diff(want, map[string]string(gw.Labels)); diff != "" {
		t.Errorf("gateway labels (-want +got):\n%s", diff)
	}
}

// TestEnvExample keeps .env.example and the compose files in step: every variable the compose files
// read is documented there, and every variable there is used.
func TestEnvExample(t *testing.T) {
	t.Parallel()
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#? ?([A-Z][A-Z0-9_]*)=`).FindAllStringSubmatch(string(readFile(t, ".env.example")), -1) {
		documented[m[1]] = true
	}
	used := map[string]bool{}
	for _, f := range []string{"docker-compose.yml", "docker-compose.dev.yml"} {
		for _, m := range regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*)`).FindAllStringSubmatch(string(readFile(t, f)), -1) {
			used[m[1]] = true
		}
	}
	var undocumented, unused []string
	for v := range used {
		if !documented[v] {
			undocumented = append(undocumented, v)
		}
	}
	for v := range documented {
		if !used[v] {
			unused = append(unused, v)
		}
	}
	sort.Strings(undocumented)
	sort.Strings(unused)
	if diff := cmp.Diff([]string(nil), undocumented); diff != "" {
		t.Errorf("compose variables missing from .env.example (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string(nil), unused); diff != "" {
		t.Errorf(".env.example variables no compose file reads (-want +got):\n%s", diff)
	}
	for _, v := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "KUBE_CLUSTER_NAME", "DOMAIN", "ACME_EMAIL"} {
		if !documented[v] {
			t.Errorf(".env.example lacks %s (from the original .env)", v)
		}
	}
}

// TestGitignoreKeepsSecretsOut checks that the files the operations guide tells operators to create
// are ignored by git.
func TestGitignoreKeepsSecretsOut(t *testing.T) {
	t.Parallel()
	ignore := strings.Fields(string(readFile(t, ".gitignore")))
	for _, pattern := range []string{".env", "*.key", "*.pem", "*.nk", "*.creds", "/data/"} {
		if !slices.Contains(ignore, pattern) {
			t.Errorf(".gitignore lacks %q", pattern)
		}
	}
}

// mustService returns one service of a compose file.
func mustService(t *testing.T, file, name string) types.ServiceConfig {
	t.Helper()
	s, err := loadCompose(t, file).GetService(name)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return s
}
