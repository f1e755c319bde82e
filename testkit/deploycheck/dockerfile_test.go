package deploycheck

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// dockerfile is the parsed form of one Dockerfile.
type dockerfile struct {
	stages []instructions.Stage
}

func parseDockerfile(t *testing.T, rel string) dockerfile {
	t.Helper()
	res, err := parser.Parse(bytes.NewReader(readFile(t, rel)))
	if err != nil {
		t.Fatalf("parse %s: %v", rel, err)
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("parse %s: %v", rel, err)
	}
	if len(stages) == 0 {
		t.Fatalf("%s: no stages", rel)
	}
	return dockerfile{stages: stages}
}

// final is the stage the image is made of.
func (d dockerfile) final() instructions.Stage { return d.stages[len(d.stages)-1] }

// user is the last USER of the final stage, or "" (root).
func (d dockerfile) user() string {
	var u string
	for _, c := range d.final().Commands {
		if uc, ok := c.(*instructions.UserCommand); ok {
			u = uc.User
		}
	}
	return u
}

// env is the final stage's ENV settings.
func (d dockerfile) env() map[string]string {
	env := map[string]string{}
	for _, c := range d.final().Commands {
		if ec, ok := c.(*instructions.EnvCommand); ok {
			for _, kv := range ec.Env {
				env[kv.Key] = kv.Value
			}
		}
	}
	return env
}

// copiesFrom lists "from:chown:dest" of the final stage's COPY --from instructions.
func (d dockerfile) copiesFrom() []string {
	var out []string
	for _, c := range d.final().Commands {
		if cc, ok := c.(*instructions.CopyCommand); ok && cc.From != "" {
			out = append(out, cc.From+":"+cc.Chown+":"+cc.DestPath)
		}
	}
	return out
}

// entrypoint is the final stage's ENTRYPOINT, exec form only.
func (d dockerfile) entrypoint() []string {
	var ep []string
	for _, c := range d.final().Commands {
		if ec, ok := c.(*instructions.EntrypointCommand); ok && !ec.PrependShell {
			ep = ec.CmdLine
		}
	}
	return ep
}

func TestDockerfiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file       string
		bases      []string // FROM of each stage
		user       string
		entrypoint []string
		copies     []string
		env        map[string]string
	}{
		{
			file:       "gateway/Dockerfile",
			bases:      []string{"golang:1.26.8-bookworm", "gcr.io/distroless/static-debian12:nonroot"},
			user:       "65532:65532",
			entrypoint: []string{"/gateway"},
			copies:     []string{"build::/gateway"},
			env:        map[string]string{"LISTEN_ADDR": ":8080", "LOG_FORMAT": "json"},
		},
		{
			file:       "worker/Dockerfile",
			bases:      []string{"golang:1.26.8-bookworm", "gcr.io/distroless/static-debian12:nonroot"},
			user:       "65532:65532",
			entrypoint: []string{"/worker"},
			copies: []string{"build::/worker", "build:65532:65532:/var/lib/brain/cache",
				"build:65532:65532:/home/nonroot/"},
			env: map[string]string{"LISTEN_ADDR": ":8080", "LOG_FORMAT": "json", "CACHE_DIR": "/var/lib/brain/cache",
				"HOME": "/home/nonroot"},
		},
		{
			file:  "traefik/Dockerfile",
			bases: []string{"traefik:v3.6.12"},
			user:  "65532:65532",
			env:   map[string]string{},
		},
		{
			file:  "deploy/compose/nats.Dockerfile",
			bases: []string{"nats:2.15.3-alpine"},
			user:  "65532:65532",
			env:   map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			d := parseDockerfile(t, tt.file)
			var bases []string
			names := map[string]bool{}
			for _, s := range d.stages {
				bases = append(bases, s.BaseName)
				if !names[s.BaseName] {
					checkPinned(t, tt.file, s.BaseName)
				}
				names[s.Name] = true
			}
			if diff := cmp.Diff(tt.bases, bases); diff != "" {
				t.Errorf("base images (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.user, d.user()); diff != "" {
				t.Errorf("final USER (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.entrypoint, d.entrypoint()); diff != "" {
				t.Errorf("ENTRYPOINT, exec form (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.copies, d.copiesFrom()); diff != "" {
				t.Errorf("COPY --from in the final stage (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.env, d.env()); diff != "" {
				t.Errorf("final ENV (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVersionsAgree checks the pins that must move together: the Go builder image and the modules'
// go directive; the Traefik image, the locally built Traefik the tests run, and the dev compose file.
func TestVersionsAgree(t *testing.T) {
	t.Parallel()
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`)
	traefikScript := regexp.MustCompile(`TRAEFIK_VERSION=\$\{TRAEFIK_VERSION:-(v[0-9.]+)\}`).FindSubmatch(readFile(t, "scripts/traefik-bin.sh"))
	if traefikScript == nil {
		t.Fatal("scripts/traefik-bin.sh: no TRAEFIK_VERSION default")
	}
	tests := []struct {
		what      string
		got, want string
	}{
		{"gateway builder vs gateway/go.mod", strings.TrimSuffix(strings.TrimPrefix(parseDockerfile(t, "gateway/Dockerfile").stages[0].BaseName, "golang:"), "-bookworm"),
			string(goVersion.FindSubmatch(readFile(t, "gateway/go.mod"))[1])},
		{"worker builder vs worker/go.mod", strings.TrimSuffix(strings.TrimPrefix(parseDockerfile(t, "worker/Dockerfile").stages[0].BaseName, "golang:"), "-bookworm"),
			string(goVersion.FindSubmatch(readFile(t, "worker/go.mod"))[1])},
		{"traefik image vs scripts/traefik-bin.sh", parseDockerfile(t, "traefik/Dockerfile").final().BaseName, "traefik:" + string(traefikScript[1])},
		{"dev compose traefik vs traefik image", mustService(t, "docker-compose.dev.yml", "traefik").Image, parseDockerfile(t, "traefik/Dockerfile").final().BaseName},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %q, want %q", tt.what, tt.got, tt.want)
		}
	}
}
