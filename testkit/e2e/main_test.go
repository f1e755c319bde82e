// Package e2e drives whole Brain systems — gateway and worker processes, NATS JetStream, a git
// server — through real WebSocket clients.
package e2e

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/backendim/brain/testkit/stack"
)

var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	// Benchmarks measure binaries built without the race detector; tests use it.
	race := flag.Lookup("test.bench").Value.String() == ""
	dir, err := os.MkdirTemp("", "brain-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := stack.Build(dir, race); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// gate is a reverse proxy in front of a git server that holds every request while closed, so a
// test can keep a job in its fetching stage as long as it needs.
type gate struct {
	proxy *httputil.ReverseProxy
	mu    sync.Mutex
	open  chan struct{}
	held  chan struct{} // receives once per held request
}

func newGate(t *testing.T, target string) *gate {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{proxy: httputil.NewSingleHostReverseProxy(u), open: make(chan struct{}), held: make(chan struct{}, 100)}
	close(g.open)
	return g
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
	default:
		g.held <- struct{}{}
		select {
		case <-open:
		case <-r.Context().Done():
			return
		}
	}
	g.proxy.ServeHTTP(w, r)
}

// Close makes later requests wait; Open lets them through.
func (g *gate) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open = make(chan struct{})
}

func (g *gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
	default:
		close(g.open)
	}
}

// TestVersionFlags: every binary says which build it is.
func TestVersionFlags(t *testing.T) {
	t.Parallel()
	for _, c := range [][]string{{"gateway", "-version"}, {"worker", "-version"}, {"brainctl", "version"}} {
		out, err := exec.Command(filepath.Join(binDir, c[0]), c[1:]...).Output()
		if err != nil || !strings.HasPrefix(string(out), c[0]+" ") || !strings.Contains(string(out), "go1.") {
			t.Errorf("%s = %q, %v; want its name, version and Go version", strings.Join(c, " "), out, err)
		}
	}
}
