package deploycheck

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// ruleFile is a Prometheus rule file (and the spec of a PrometheusRule).
type ruleFile struct {
	Groups []struct {
		Name  string
		Rules []struct {
			Alert       string
			Expr        string
			For         string
			Labels      map[string]string
			Annotations map[string]string
		}
	}
}

func TestAlertRules(t *testing.T) {
	t.Parallel()
	var plain ruleFile
	if err := yaml.Unmarshal(readFile(t, "deploy/monitoring/alerts.rules.yml"), &plain); err != nil {
		t.Fatal(err)
	}
	var operator struct {
		Kind string
		Spec ruleFile
	}
	if err := yaml.Unmarshal(readFile(t, "deploy/monitoring/prometheusrule.yaml"), &operator); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(plain, operator.Spec); diff != "" {
		t.Errorf("prometheusrule.yaml differs from alerts.rules.yml (-plain +PrometheusRule):\n%s", diff)
	}
	alerts := map[string]bool{}
	for _, g := range plain.Groups {
		for _, r := range g.Rules {
			if alerts[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			switch {
			case r.Alert == "" || r.Expr == "" || r.For == "":
				t.Errorf("rule %+v: needs alert, expr and for", r)
			case !map[string]bool{"critical": true, "warning": true, "info": true}[r.Labels["severity"]]:
				t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, r.Labels["severity"])
			case r.Annotations["summary"] == "" || r.Annotations["description"] == "":
				t.Errorf("%s: needs summary and description annotations", r.Alert)
			}
		}
	}
}

func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	var dash struct {
		UID    string
		Panels []struct {
			Type    string
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(readFile(t, "deploy/monitoring/brain-dashboard.json"), &dash); err != nil {
		t.Fatalf("brain-dashboard.json: %v", err)
	}
	if dash.UID == "" {
		t.Error("dashboard has no uid")
	}
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
}

// metricNames lists the brain_* metric names in text, without histogram suffixes.
func metricNames(text string) []string {
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`\bbrain_(?:gateway|worker)_[a-z_]+`).FindAllString(text, -1) {
		m = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
		seen[m] = true
	}
	var out []string
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// TestMetricsDocumented checks that every metric the gateway and worker register, and every metric
// the alerts and the dashboard use, is documented in docs/operations.md.
func TestMetricsDocumented(t *testing.T) {
	t.Parallel()
	documented := map[string]bool{}
	for _, m := range metricNames(string(readFile(t, "docs/operations.md"))) {
		documented[m] = true
	}
	sources := map[string]string{
		"deploy/monitoring/alerts.rules.yml":     string(readFile(t, "deploy/monitoring/alerts.rules.yml")),
		"deploy/monitoring/brain-dashboard.json": string(readFile(t, "deploy/monitoring/brain-dashboard.json")),
	}
	// Metric names as the binaries register them: Name: "brain_..." in non-test Go files.
	root := repoRoot(t)
	for _, dir := range []string{"gateway", "worker"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range regexp.MustCompile(`Name:\s*"(brain_[a-z_]+)"`).FindAllStringSubmatch(string(b), -1) {
				rel, _ := filepath.Rel(root, path)
				sources[rel] += m[1] + "\n"
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for src, text := range sources {
		for _, m := range metricNames(text) {
			if !documented[m] {
				t.Errorf("%s uses %s, which docs/operations.md does not document", src, m)
			}
		}
	}
}
