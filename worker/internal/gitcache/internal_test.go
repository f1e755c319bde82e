package gitcache

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNormalizeURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"https://github.com/org/app.git", "https://github.com/org/app"},
		{"https://github.com/org/app", "https://github.com/org/app"},
		{"https://github.com/org/app/", "https://github.com/org/app"},
		{"https://github.com/org/app.git/", "https://github.com/org/app"},
		{"HTTPS://GitHub.COM:443/org/App.git", "https://github.com/org/App"},
		{"https://github.com./org/app", "https://github.com/org/app"},
		{"https://git.example.com:8443/app.git", "https://git.example.com:8443/app"},
		{"http://git.example.com:80/app.git", "http://git.example.com/app"},
		{"http://git.example.com:443/app.git", "http://git.example.com:443/app"},
		{"https://[2001:DB8::1]:443/app.git", "https://[2001:db8::1]/app"},
		{"https://github.com/org/app%20x.git", "https://github.com/org/app%20x"},
		{"https://github.com/org/app.git.git", "https://github.com/org/app.git"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := NormalizeURL(u); got != tt.want {
			t.Errorf("NormalizeURL(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	if repoKey("https://github.com/org/app") == repoKey("https://github.com/org/App") {
		t.Error("repository paths differing in case share a cache entry")
	}
}

func TestParseCredentials(t *testing.T) {
	t.Parallel()
	const file = `# operator's git credentials
https://deployer:tok%2Fen@GitHub.com
https://second:ignored@github.com/org/repo

http://bot:pw@10.0.0.5:3000/
https://x-token:abc@git.example.com:443
`
	c, err := ParseCredentials([]byte(file))
	if err != nil {
		t.Fatalf("ParseCredentials: %v", err)
	}
	wantOrigins := []string{"http://10.0.0.5:3000", "https://git.example.com", "https://github.com"}
	if diff := cmp.Diff(wantOrigins, c.Origins()); diff != "" {
		t.Errorf("Origins (-want +got):\n%s", diff)
	}
	tests := []struct {
		url      string
		want     credential
		wantSome bool
	}{
		{"https://github.com/org/app.git", credential{"deployer", "tok/en"}, true},
		{"https://GITHUB.com:443/other", credential{"deployer", "tok/en"}, true},
		{"http://github.com/org/app.git", credential{}, false},
		{"https://api.github.com/org/app.git", credential{}, false},
		{"http://10.0.0.5:3000/app.git", credential{"bot", "pw"}, true},
		{"http://10.0.0.5/app.git", credential{}, false},
		{"https://git.example.com/app.git", credential{"x-token", "abc"}, true},
	}
	for _, tt := range tests {
		u, _ := url.Parse(tt.url)
		got, ok := c.lookup(u)
		if ok != tt.wantSome || got != tt.want {
			t.Errorf("lookup(%s) = %+v, %v; want %+v, %v", tt.url, got, ok, tt.want, tt.wantSome)
		}
	}
	if s := c.String(); strings.Contains(s, "tok") || strings.Contains(s, "pw") {
		t.Errorf("String() = %q shows a token", s)
	}

	for _, bad := range []string{
		"github.com secret-token",
		"https://github.com",
		"https://user@github.com",
		"ftp://user:secret-token@github.com",
		"https://:secret-token@github.com",
	} {
		_, err := ParseCredentials([]byte("# ok\n" + bad + "\n"))
		if err == nil {
			t.Errorf("ParseCredentials(%q) succeeded", bad)
			continue
		}
		if !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "secret-token") {
			t.Errorf("ParseCredentials(%q) error %q: want it to name line 2 and not the token", bad, err)
		}
	}
}

func TestLoadCredentialsPermissions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials")
	if err := os.WriteFile(path, []byte("https://u:secret-token@github.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadCredentials(path)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), "secret-token") {
		t.Fatalf("LoadCredentials of a 0644 file: error = %v, want one saying chmod 600", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCredentials(path); err == nil {
		t.Fatal("LoadCredentials of a group-writable file succeeded")
	}
	// 0440 is how a Kubernetes Secret mounted with fsGroup looks.
	for _, mode := range []os.FileMode{0o440, 0o600} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadCredentials(path); err != nil {
			t.Fatalf("LoadCredentials of a %04o file: %v", mode, err)
		}
	}
	c, err := LoadCredentials(path)
	if err != nil {
		t.Fatalf("LoadCredentials of a 0600 file: %v", err)
	}
	if diff := cmp.Diff([]string{"https://github.com"}, c.Origins()); diff != "" {
		t.Errorf("Origins (-want +got):\n%s", diff)
	}
	if _, err := LoadCredentials(filepath.Join(dir, "missing")); err == nil {
		t.Error("LoadCredentials of a missing file succeeded")
	}
}

func TestProgressWriter(t *testing.T) {
	t.Parallel()
	var lines []string
	w := newProgressWriter(func(s string) { lines = append(lines, s) })
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w.now = func() time.Time { return now }

	write := func(s string) {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	write("Counting objects:  10% (1/10)\r")           // first rewrite: passed on
	write("Counting objects:  20% (2/10)\r")           // too soon: dropped
	now = now.Add(3 * time.Second)                     //
	write("Counting objects:  90% (9/10)\rCount")      // due again; the rest waits for its end
	write("ing objects: 100% (10/10), done.\n")        // finished lines always pass
	write("remote: \x1b[31mred\x1b[0m\n")              // control characters dropped
	write("\n\r   \n")                                 // blank lines dropped
	write(strings.Repeat("é", maxProgressLine) + "\n") // long lines cut on a rune boundary

	want := []string{
		"Counting objects:  10% (1/10)",
		"Counting objects:  90% (9/10)",
		"Counting objects: 100% (10/10), done.",
		"remote: [31mred[0m",
		strings.Repeat("é", maxProgressLine/2) + "…",
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("progress lines (-want +got):\n%s", diff)
	}
}
