package gitserver

import (
	"strconv"
	"testing"
)

// maxPrefixCommits bounds CommitsSharingPrefix. With 4 hex digits (65,536 values) the birthday
// bound makes a shared prefix likely after a few hundred commits and all but certain after 2,000.
const maxPrefixCommits = 2000

// CommitsSharingPrefix commits on main, each with a one-file tree, until two of the new commits
// share their first n hex digits (2 ≤ n ≤ 6), and returns that prefix and the two full SHAs. The
// fixture is deterministic, so a test using it behaves the same on every run. It fails the test if
// no pair turns up within maxPrefixCommits commits.
func (r *Repo) CommitsSharingPrefix(t testing.TB, n int) (prefix, first, second string) {
	t.Helper()
	if n < 2 || n > 6 {
		t.Fatalf("gitserver: CommitsSharingPrefix: n = %d, want 2 to 6", n)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := make(map[string]string)
	for i := range maxPrefixCommits {
		h, err := r.commit("prefix fixture "+strconv.Itoa(i), map[string]string{"n.txt": strconv.Itoa(i) + "\n"})
		if err != nil {
			t.Fatalf("gitserver: prefix fixture commit %d in %s: %v", i, r.dir, err)
		}
		sha := h.String()
		if other, ok := seen[sha[:n]]; ok {
			return sha[:n], other, sha
		}
		seen[sha[:n]] = sha
	}
	t.Fatalf("gitserver: no two of %d commits share a %d-digit prefix", maxPrefixCommits, n)
	return "", "", ""
}
