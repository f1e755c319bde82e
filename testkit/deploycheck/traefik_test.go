package deploycheck

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/testkit/stack"
	"github.com/coder/websocket"
	"golang.org/x/crypto/bcrypt"
	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"
)

// TestTraefik runs a real Traefik (v3.6, built from Go modules by scripts/traefik-bin.sh) with the
// project's configuration — traefik/traefik.yml, traefik/dynamic/*.yml and the gateway's labels in
// docker-compose.yml — in front of two real gateways, and drives clients through it. What stands in
// for Docker: the file provider carries the gateway service (the labels, with the two gateways as its
// servers), and a self-signed certificate replaces Let's Encrypt.
func TestTraefik(t *testing.T) {
	bin := traefikBinary(t)
	binDir := t.TempDir()
	if err := stack.Build(binDir, false); err != nil {
		t.Fatalf("build the gateway and worker binaries: %v", err)
	}
	s := stack.Start(t, stack.Options{BinDir: binDir, Gateways: 2, Workers: 1})
	tr := startTraefik(t, bin, []string{s.Gateways[0].HTTPURL(), s.Gateways[1].HTTPURL()})

	t.Run("TLS 1.3 only", func(t *testing.T) {
		tests := []struct {
			name       string
			serverName string
			max        uint16
			wantErr    bool
		}{
			{"TLS 1.3", tr.domain, tls.VersionTLS13, false},
			{"TLS 1.2 client", tr.domain, tls.VersionTLS12, true},
			{"unknown name (sniStrict)", "other.example.com", tls.VersionTLS13, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", tr.websecure,
					&tls.Config{ServerName: tt.serverName, RootCAs: tr.roots, MaxVersion: tt.max})
				if err == nil {
					defer conn.Close()
					if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
						t.Errorf("negotiated %s, want TLS 1.3", tls.VersionName(v))
					}
				}
				if (err != nil) != tt.wantErr {
					t.Errorf("handshake error %v, want error: %v", err, tt.wantErr)
				}
			})
		}
	})

	t.Run("port 80 redirects to https", func(t *testing.T) {
		client := &http.Client{Timeout: 5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, err := http.NewRequest(http.MethodGet, "http://"+tr.web+"/ws?x=1", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tr.domain
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// To the websecure entry point's port: 443 in production, where the URL then carries none.
		_, port, _ := net.SplitHostPort(tr.websecure)
		if got, want := fmt.Sprint(resp.StatusCode, " ", resp.Header.Get("Location")), "301 https://"+tr.domain+":"+port+"/ws?x=1"; got != want {
			t.Errorf("GET http://%s/ws?x=1: %s, want %s", tr.domain, got, want)
		}
	})

	t.Run("dashboard needs basic auth", func(t *testing.T) {
		tests := []struct {
			name       string
			host, path string
			user, pass string
			want       int
		}{
			{"anonymous dashboard", "traefik." + tr.domain, "/dashboard/", "", "", http.StatusUnauthorized},
			{"anonymous API", "traefik." + tr.domain, "/api/overview", "", "", http.StatusUnauthorized},
			{"wrong password", "traefik." + tr.domain, "/api/overview", "admin", "guess", http.StatusUnauthorized},
			{"operator", "traefik." + tr.domain, "/api/overview", "admin", tr.password, http.StatusOK},
			{"not on the public name", tr.domain, "/api/overview", "admin", tr.password, http.StatusNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req, err := http.NewRequest(http.MethodGet, "https://"+tt.host+tt.path, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tt.user != "" {
					req.SetBasicAuth(tt.user, tt.pass)
				}
				resp, err := tr.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tt.want {
					t.Errorf("GET https://%s%s: %s, want %d", tt.host, tt.path, resp.Status, tt.want)
				}
			})
		}
	})

	t.Run("jobs spread over both gateways", func(t *testing.T) {
		const accepted = `brain_gateway_jobs_submitted_total{result="accepted"}`
		before := []float64{s.Gateways[0].Metric(t, accepted), s.Gateways[1].Metric(t, accepted)}
		const jobs = 6
		for i := range jobs {
			tr.submit(t, s.Token(fmt.Sprintf("u%d", i)), fmt.Sprintf("c%d", i), i%2 == 0)
		}
		got := []float64{s.Gateways[0].Metric(t, accepted) - before[0], s.Gateways[1].Metric(t, accepted) - before[1]}
		if got[0] < 1 || got[1] < 1 || got[0]+got[1] != jobs {
			t.Errorf("jobs accepted per gateway %v, want %d in all, spread over both", got, jobs)
		}
	})

	t.Run("tokens stay out of the access log", func(t *testing.T) {
		before := strings.Count(tr.readAccessLog(t), `"RouterName":"brain@file"`)
		tok := s.Token("u-log")
		tr.submit(t, tok, "c-log", true)
		var log string
		waitFor(t, 10*time.Second, nil, nil, func() bool { // the line is written when the socket ends
			log = tr.readAccessLog(t)
			return strings.Count(log, `"RouterName":"brain@file"`) > before
		})
		if strings.Contains(log, tok) || strings.Contains(log, "access_token") {
			t.Errorf("the access log holds the token:\n%s", log)
		}
	})

	t.Run("a stopped gateway leaves the rotation", func(t *testing.T) {
		if err := s.Gateways[1].Stop(10 * time.Second); err != nil {
			t.Fatalf("stop gateway 2: %v", err)
		}
		tr.waitServerDown(t, s.Gateways[1].HTTPURL())
		const accepted = `brain_gateway_jobs_submitted_total{result="accepted"}`
		before := s.Gateways[0].Metric(t, accepted)
		for i := range 4 {
			tr.submit(t, s.Token(fmt.Sprintf("v%d", i)), fmt.Sprintf("d%d", i), false)
		}
		if got := s.Gateways[0].Metric(t, accepted) - before; got != 4 {
			t.Errorf("gateway 1 accepted %v jobs, want all 4", got)
		}
	})
}

// traefikBinary builds (once, cached) and returns the Traefik binary.
func traefikBinary(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(repoRoot(t), "scripts", "traefik-bin.sh"))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/traefik-bin.sh: %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// traefik is a running Traefik and what a client needs to reach it.
type traefik struct {
	domain         string
	web, websecure string // 127.0.0.1:port
	api            string // Traefik's API base URL, with the dashboard credentials
	password       string // of user admin
	roots          *x509.CertPool
	client         *http.Client // HTTPS to websecure, whatever the URL's host
	accessLogPath  string
}

func startTraefik(t *testing.T, bin string, gateways []string) *traefik {
	t.Helper()
	dir := t.TempDir()
	compose := loadCompose(t, "docker-compose.yml")
	svc, err := compose.GetService("traefik")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := compose.GetService("gateway")
	if err != nil {
		t.Fatal(err)
	}
	tr := &traefik{domain: *svc.Environment["DOMAIN"], web: stack.FreeAddr(t), websecure: stack.FreeAddr(t),
		password: "s3cret-" + rand.Text(), accessLogPath: filepath.Join(dir, "access.log")}
	internal := stack.FreeAddr(t)
	certFile, keyFile := tr.selfSigned(t, dir)

	writeStaticConfig(t, filepath.Join(dir, "traefik.yml"), map[string]string{
		"web": tr.web, "websecure": tr.websecure, "internal": internal}, filepath.Join(dir, "dynamic"), tr.accessLogPath)
	copyDynamicConfig(t, filepath.Join(dir, "dynamic"))
	writeYAML(t, filepath.Join(dir, "dynamic", "test-gateway.yml"), labelsToDynamic(t, gw.Labels, gateways))
	writeYAML(t, filepath.Join(dir, "dynamic", "test-certificate.yml"), map[string]any{"tls": map[string]any{
		"certificates": []any{map[string]any{"certFile": certFile, "keyFile": keyFile}},
		"stores": map[string]any{"default": map[string]any{"defaultCertificate": map[string]any{
			"certFile": certFile, "keyFile": keyFile}}}}})

	hash, err := bcrypt.GenerateFromPassword([]byte(tr.password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	logs := &stack.Buffer{}
	cmd := exec.Command(bin, "--configFile="+filepath.Join(dir, "traefik.yml"))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "DOMAIN=" + tr.domain,
		"DASHBOARD_USERS=admin:" + string(hash)}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("traefik log:\n%s", logs.String())
		}
	})

	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, tr.websecure)
		},
		TLSClientConfig: &tls.Config{RootCAs: tr.roots, MinVersion: tls.VersionTLS13},
	}}
	tr.api = "https://admin:" + tr.password + "@traefik." + tr.domain + "/api"
	// Ready when the route to the gateways answers (the gateway refuses a plain GET without a token).
	waitFor(t, 30*time.Second, done, logs, func() bool {
		resp, err := tr.client.Get("https://" + tr.domain + "/ws")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode != http.StatusNotFound && resp.StatusCode < 500
	})
	return tr
}

// writeStaticConfig writes traefik/traefik.yml with what the test replaces: loopback addresses,
// no Docker provider, no ACME (the entry point keeps its TLS), the dynamic directory, and the access
// log in a file.
func writeStaticConfig(t *testing.T, path string, addrs map[string]string, dynamicDir, accessLog string) {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal(readFile(t, "traefik/traefik.yml"), &cfg); err != nil {
		t.Fatalf("traefik/traefik.yml: %v", err)
	}
	eps := cfg["entryPoints"].(map[string]any)
	for name, addr := range addrs {
		ep, ok := eps[name].(map[string]any)
		if !ok {
			t.Fatalf("traefik/traefik.yml has no entry point %q", name)
		}
		ep["address"] = addr
	}
	delete(eps["websecure"].(map[string]any)["http"].(map[string]any)["tls"].(map[string]any), "certResolver")
	delete(cfg, "certificatesResolvers")
	providers := cfg["providers"].(map[string]any)
	delete(providers, "docker")
	providers["file"].(map[string]any)["directory"] = dynamicDir
	cfg["accessLog"].(map[string]any)["filePath"] = accessLog
	cfg["accessLog"].(map[string]any)["bufferingSize"] = 0
	writeYAML(t, path, cfg)
}

// copyDynamicConfig copies traefik/dynamic/*.yml unchanged.
func copyDynamicConfig(t *testing.T, dst string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "traefik", "dynamic", "*.yml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("traefik/dynamic/*.yml: %v (%d files)", err, len(files))
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// labelsToDynamic turns the traefik.http.* labels of a compose service into the file provider's
// form, the way Traefik's Docker provider reads them, with the given URLs as the servers of each
// service in place of the containers.
func labelsToDynamic(t *testing.T, labels map[string]string, servers []string) map[string]any {
	t.Helper()
	root := map[string]any{}
	for k, v := range labels {
		rest, ok := strings.CutPrefix(k, "traefik.http.")
		if !ok {
			continue
		}
		path := strings.Split(rest, ".")
		if len(path) >= 4 && path[0] == "services" && path[2] == "loadbalancer" && path[3] == "server" {
			continue // the container's port: replaced by servers below
		}
		m := root
		for _, p := range path[:len(path)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		m[path[len(path)-1]] = v
	}
	services, ok := root["services"].(map[string]any)
	if !ok || len(services) == 0 {
		t.Fatalf("gateway labels define no traefik.http.services: %v", labels)
	}
	var list []any
	for _, s := range servers {
		list = append(list, map[string]any{"url": s})
	}
	for _, svc := range services {
		svc.(map[string]any)["loadbalancer"].(map[string]any)["servers"] = list
	}
	return map[string]any{"http": root}
}

// selfSigned makes a certificate for the public name and the dashboard's name.
func (tr *traefik) selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: tr.domain},
		DNSNames: []string{tr.domain, "traefik." + tr.domain}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	tr.roots = x509.NewCertPool()
	tr.roots.AddCert(cert)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// submit opens a wss:// socket through Traefik, sends a deploy and waits for its queued event.
// The token goes in the Authorization header, or in ?access_token= as browsers send it.
func (tr *traefik) submit(t *testing.T, token, chat string, inQuery bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	u := "wss://" + tr.domain + "/ws"
	opts := &websocket.DialOptions{HTTPClient: tr.client}
	if inQuery {
		u += "?access_token=" + token
	} else {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + token}}
	}
	c, _, err := websocket.Dial(ctx, u, opts)
	if err != nil {
		t.Fatalf("dial wss://%s/ws through traefik: %v", tr.domain, err)
	}
	defer c.CloseNow()
	req, err := json.Marshal(proto.Request{ChatID: chat, RepoURL: "https://git.example.com/org/app.git", CommitHash: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, websocket.MessageText, req); err != nil {
		t.Fatalf("send deploy: %v", err)
	}
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("wait for the queued event of chat %s: %v", chat, err)
		}
		m, err := proto.DecodeMessage(data)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if m.Type == proto.TypeError && m.JobID == "" {
			t.Fatalf("deploy refused: %s", data)
		}
		if m.Stage == proto.StageQueued && m.JobID != "" {
			c.Close(websocket.StatusNormalClosure, "")
			return
		}
	}
}

// readAccessLog returns Traefik's access log so far.
func (tr *traefik) readAccessLog(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(tr.accessLogPath)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// waitServerDown waits until Traefik's health check has taken url out of the gateway service.
func (tr *traefik) waitServerDown(t *testing.T, url string) {
	t.Helper()
	waitFor(t, 30*time.Second, nil, nil, func() bool {
		resp, err := tr.client.Get(tr.api + "/http/services/brain@file")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var svc struct {
			ServerStatus map[string]string `json:"serverStatus"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&svc); err != nil {
			return false
		}
		return svc.ServerStatus[url] == "DOWN"
	})
}

// waitFor polls cond until it holds, failing the test after d or when exited closes.
func waitFor(t *testing.T, d time.Duration, exited <-chan struct{}, logs *stack.Buffer, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-exited:
			t.Fatalf("traefik exited:\n%s", logs.String())
		case <-deadline.C:
			t.Fatalf("condition not met within %s", d)
		case <-tick.C:
		}
	}
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := sigsyaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
