package e2e

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/testkit/gitserver"
	"github.com/backendim/brain/testkit/stack"
	"github.com/google/go-cmp/cmp"
)

const manifests = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx:1.27}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80}]
`

func deploy(user, chat, repo, ref string) map[string]any {
	return map[string]any{"userId": user, "chatId": chat, "repoURL": repo, "commitHash": ref}
}

func TestOriginalMessageEndToEnd(t *testing.T) {
	t.Parallel()
	git := gitserver.New(t)
	repo := git.Repo(t, "app")
	sha := repo.Commit(t, "Add web", map[string]string{"deploy/app.yaml": manifests, "README.md": "hi"})
	s := stack.Start(t, stack.Options{BinDir: binDir})
	c := stack.Dial(t, s.Gateways[0], s.Token("u1"))
	c.Send(deploy("u1", "c1", repo.URL(), sha[:10]))
	queued := c.Read(10 * time.Second)
	if queued.Stage != proto.StageQueued {
		t.Fatalf("first = %+v", queued)
	}
	events := c.UntilFinal(queued.JobID, 60*time.Second)
	final := events[len(events)-1]
	if final.Type != proto.TypeSuccess {
		t.Fatalf("final = %+v", final)
	}
	var stages []proto.Stage
	for _, m := range events[:len(events)-1] {
		if len(stages) == 0 || stages[len(stages)-1] != m.Stage {
			stages = append(stages, m.Stage)
		}
	}
	want := []proto.Stage{proto.StageStarted, proto.StageFetching, proto.StageCheckedOut, proto.StageRendering}
	if diff := cmp.Diff(want, stages); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
	p := final.Payload
	if p.Commit != sha || p.Subject != "Add web" || p.Path != "deploy" || p.Namespace != "im-c1-u1" {
		t.Errorf("payload = %+v", p)
	}
	var objs []string
	for _, o := range p.Objects {
		objs = append(objs, o.Kind+"/"+o.Name)
	}
	if diff := cmp.Diff([]string{"Deployment/web", "Service/web"}, objs); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	for i := 1; i < len(events); i++ {
		if events[i].Seq != events[i-1].Seq+1 {
			t.Errorf("seq %d after %d: the chat's events must be contiguous", events[i].Seq, events[i-1].Seq)
		}
	}
}

func TestJobErrorsEndToEnd(t *testing.T) {
	t.Parallel()
	git := gitserver.New(t)
	repo := git.Repo(t, "app")
	sha := repo.Commit(t, "Add web", map[string]string{"deploy/app.yaml": manifests})
	repo.Tag(t, "v1", sha)
	noManifests := git.Repo(t, "empty")
	noManifests.Commit(t, "docs only", map[string]string{"README.md": "nothing to deploy"})
	s := stack.Start(t, stack.Options{BinDir: binDir})
	tests := []struct {
		name string
		repo string
		ref  string
		code proto.Code
		text string
	}{
		{"tag", repo.URL(), "v1", "", ""},
		{"branch", repo.URL(), "main", "", ""},
		{"unknown commit", repo.URL(), "deadbeef", proto.CodeCommitNotFound, "deadbeef"},
		{"unknown repo", git.URL("nope"), "main", proto.CodeRepoNotFound, "nope"},
		{"no manifests", noManifests.URL(), "main", proto.CodeManifestsNotFound, ".brain"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := stack.Dial(t, s.Gateways[0], s.Token("u1"))
			c.Send(deploy("u1", "errs"+string(rune('a'+i)), tt.repo, tt.ref))
			q := c.Read(10 * time.Second)
			final := c.UntilFinal(q.JobID, 60*time.Second)
			m := final[len(final)-1]
			if tt.code == "" {
				if m.Type != proto.TypeSuccess || m.Payload.Commit != sha {
					t.Fatalf("final = %+v, want success at %s", m, sha)
				}
				return
			}
			if m.Type != proto.TypeError || m.Code != tt.code || !strings.Contains(m.Message, tt.text) {
				t.Fatalf("final = %+v, want %s mentioning %q", m, tt.code, tt.text)
			}
		})
	}
}

func TestURLPolicyRefusalEndToEnd(t *testing.T) {
	t.Parallel()
	git := gitserver.New(t)
	repo := git.Repo(t, "app")
	repo.Commit(t, "Add web", map[string]string{"deploy/app.yaml": manifests})
	s := stack.Start(t, stack.Options{BinDir: binDir, WorkerEnv: map[string]string{"GIT_ALLOW_HTTP": "false", "GIT_ALLOW_PRIVATE_NETWORKS": "false"}})
	c := stack.Dial(t, s.Gateways[0], s.Token("u1"))
	for i, u := range []string{repo.URL(), "https://127.0.0.1/x.git", "https://169.254.169.254/latest.git", "https://localhost/r.git"} {
		c.Send(deploy("u1", "pol"+string(rune('a'+i)), u, "main"))
		q := c.Read(10 * time.Second)
		final := c.UntilFinal(q.JobID, 30*time.Second)
		if m := final[len(final)-1]; m.Code != proto.CodeURLRefused || *m.Retryable {
			t.Errorf("%s: final = %+v, want url_refused", u, m)
		}
	}
	if git.Requests() != 0 {
		t.Errorf("the git server got %d requests; refused URLs must not be fetched", git.Requests())
	}
}

func TestSwitchGatewaysAndKillWorkerMidJob(t *testing.T) {
	t.Parallel()
	git := gitserver.New(t)
	repo := git.Repo(t, "app")
	sha := repo.Commit(t, "Add web", map[string]string{"k8s/app.yaml": manifests})
	g := newGate(t, git.BaseURL())
	front := httptest.NewServer(g)
	t.Cleanup(front.Close)
	env := map[string]string{"ACK_WAIT": "2s", "LOCK_TTL": "2s"}
	s := stack.Start(t, stack.Options{BinDir: binDir, Gateways: 2, Workers: 1, WorkerEnv: env})

	g.Close()
	c1 := stack.Dial(t, s.Gateways[0], s.Token("u1"))
	c1.Send(deploy("u1", "c1", front.URL+"/app.git", sha))
	queued := c1.Read(10 * time.Second)
	seqs := []uint64{queued.Seq}
	for {
		m := c1.Read(30 * time.Second)
		seqs = append(seqs, m.Seq)
		if m.Stage == proto.StageFetching {
			break
		}
	}
	<-g.held // the first worker is inside its fetch
	s.Workers[0].Kill()
	c1.WS.CloseNow()
	s.AddWorker(t, env)
	g.Open()

	c2 := stack.Dial(t, s.Gateways[1], s.Token("u1"))
	c2.Send(map[string]any{"type": "subscribe", "chatId": "c1", "after": seqs[len(seqs)-1]})
	if m := c2.Read(10 * time.Second); m.Type != proto.TypeSubscribed {
		t.Fatalf("got %+v", m)
	}
	rest := c2.UntilFinal(queued.JobID, 90*time.Second)
	attempts := map[int]bool{}
	for _, m := range rest {
		seqs = append(seqs, m.Seq)
		if m.Stage == proto.StageStarted {
			attempts[m.Attempt] = true
		}
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("seqs %v: an event was lost or repeated across the switch", seqs)
		}
	}
	if final := rest[len(rest)-1]; final.Type != proto.TypeSuccess || final.Payload.Commit != sha {
		t.Fatalf("final = %+v", final)
	}
	if !attempts[2] {
		t.Errorf("no second attempt started: %v", attempts)
	}
}

func TestRepeatedRequestIDEndToEnd(t *testing.T) {
	t.Parallel()
	git := gitserver.New(t)
	repo := git.Repo(t, "app")
	sha := repo.Commit(t, "Add web", map[string]string{"deploy/app.yaml": manifests})
	s := stack.Start(t, stack.Options{BinDir: binDir, Gateways: 2})
	msg := deploy("u1", "c1", repo.URL(), sha)
	msg["requestId"] = "same-key"
	c1 := stack.Dial(t, s.Gateways[0], s.Token("u1"))
	c1.Send(msg)
	q := c1.Read(10 * time.Second)
	c1.UntilFinal(q.JobID, 60*time.Second)
	c2 := stack.Dial(t, s.Gateways[1], s.Token("u1"))
	c2.Send(msg)
	dup := c2.Read(10 * time.Second)
	if !dup.Duplicate || dup.JobID != q.JobID {
		t.Fatalf("repeat = %+v", dup)
	}
	c2.UntilFinal(q.JobID, 30*time.Second) // the replay ends with the original success
	if n := s.Workers[0].Metric(t, `brain_worker_jobs_total{result="succeeded"}`); n != 1 {
		t.Errorf("worker ran %v jobs, want 1", n)
	}
}

func TestBrainctlDeployAndWatch(t *testing.T) {
	t.Parallel()
	git := gitserver.New(t)
	repo := git.Repo(t, "app")
	sha := repo.Commit(t, "Add web", map[string]string{"deploy/app.yaml": manifests})
	s := stack.Start(t, stack.Options{BinDir: binDir})
	brainctl := filepath.Join(binDir, "brainctl")
	run := func(args ...string) (string, int) {
		cmd := exec.Command(brainctl, args...)
		cmd.Env = append(os.Environ(), "BRAIN_URL="+s.Gateways[0].WSURL(), "BRAIN_TOKEN="+s.Token("u1"))
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	out, code := run("deploy", "--user", "u1", "--chat", "c1", "--repo", repo.URL(), "--commit", "main")
	if code != 0 || !strings.Contains(out, sha) {
		t.Fatalf("deploy exit %d, output:\n%s", code, out)
	}
	out, code = run("deploy", "--user", "u1", "--chat", "c1", "--repo", repo.URL(), "--commit", "nosuchbranch")
	if code != 1 || !strings.Contains(out, string(proto.CodeCommitNotFound)) {
		t.Fatalf("failing deploy exit %d, output:\n%s", code, out)
	}
	out, code = run("status", "--chat", "c1")
	if code != 0 || !strings.Contains(out, "nosuchbranch") {
		t.Errorf("status exit %d, output:\n%s", code, out)
	}
}
