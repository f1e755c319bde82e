package gitcache

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/backendim/brain/proto"
)

// Abbreviated SHAs: at least minPrefix hex digits; at most maxCandidates are named when one is
// ambiguous.
const (
	minPrefix     = 4
	maxCandidates = 5
	maxTagDepth   = 10
)

// fullSHA returns ref as a hash when it is 40 hex digits (either case).
func fullSHA(ref string) (plumbing.Hash, bool) {
	if len(ref) != 40 || !isHex(ref) {
		return plumbing.ZeroHash, false
	}
	return plumbing.NewHash(strings.ToLower(ref)), true
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return s != ""
}

// resolve finds the commit ref names in the cache entry, in this order: a full SHA, a branch, a
// tag (annotated tags peeled to their commit), a full reference name, then a unique abbreviated
// SHA. refs are the server's advertised references; repo is the URL for messages.
func resolve(st *filesystem.Storage, ref string, refs map[string]plumbing.Hash, repo string) (*object.Commit, error) {
	if h, ok := fullSHA(ref); ok {
		c, err := object.GetCommit(st, h)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil, fmt.Errorf("read commit %s: %w", h, err)
		}
	}
	for _, name := range refCandidates(ref) {
		if h, ok := refs[name]; ok {
			return peel(st, h, ref, repo)
		}
	}
	if len(ref) >= minPrefix && len(ref) < 40 && isHex(ref) {
		return resolvePrefix(st, strings.ToLower(ref), repo)
	}
	return nil, notFound(ref, repo)
}

func notFound(ref, repo string) *proto.Error {
	if _, ok := fullSHA(ref); ok {
		return proto.Errorf(proto.CodeCommitNotFound, "commit %s not found in %s; check that it was pushed", strings.ToLower(ref), repo)
	}
	return proto.Errorf(proto.CodeCommitNotFound,
		"no branch, tag or commit %q in %s; use a branch or tag name, or a commit SHA of at least %d hex digits", ref, repo, minPrefix)
}

// peel follows tag objects from h to the commit they point at.
func peel(st *filesystem.Storage, h plumbing.Hash, ref, repo string) (*object.Commit, error) {
	for range maxTagDepth {
		obj, err := st.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return nil, fmt.Errorf("read %s (%s): %w", ref, h, err)
		}
		switch obj.Type() {
		case plumbing.CommitObject:
			return object.DecodeCommit(st, obj)
		case plumbing.TagObject:
			tag, err := object.DecodeTag(st, obj)
			if err != nil {
				return nil, fmt.Errorf("read tag %s (%s): %w", ref, h, err)
			}
			h = tag.Target
		default:
			return nil, proto.Errorf(proto.CodeCommitNotFound, "%s in %s points to a %s, not a commit", ref, repo, obj.Type())
		}
	}
	return nil, proto.Errorf(proto.CodeCommitNotFound, "tag %s in %s nests more than %d tags deep", ref, repo, maxTagDepth)
}

// resolvePrefix finds the one commit whose SHA starts with prefix (lower-case hex).
func resolvePrefix(st *filesystem.Storage, prefix, repo string) (*object.Commit, error) {
	raw, err := hex.DecodeString(prefix[:len(prefix)&^1])
	if err != nil {
		return nil, fmt.Errorf("decode prefix %s: %w", prefix, err)
	}
	hashes, err := st.HashesWithPrefix(raw)
	if err != nil {
		return nil, fmt.Errorf("find objects starting with %s: %w", prefix, err)
	}
	seen := map[plumbing.Hash]bool{}
	var commits []*object.Commit
	for _, h := range hashes {
		if seen[h] || !strings.HasPrefix(h.String(), prefix) {
			continue
		}
		seen[h] = true
		c, err := object.GetCommit(st, h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			continue // a tree, blob or tag
		}
		if err != nil {
			return nil, fmt.Errorf("read object %s: %w", h, err)
		}
		commits = append(commits, c)
	}
	switch len(commits) {
	case 0:
		return nil, notFound(prefix, repo)
	case 1:
		return commits[0], nil
	}
	sort.Slice(commits, func(i, j int) bool { return commits[i].Hash.String() < commits[j].Hash.String() })
	names := make([]string, 0, maxCandidates)
	for _, c := range commits[:min(len(commits), maxCandidates)] {
		names = append(names, c.Hash.String()[:12]+" ("+subject(c.Message)+")")
	}
	return nil, proto.Errorf(proto.CodeAmbiguousCommit, "commit prefix %s matches %d commits in %s: %s; use more hex digits",
		prefix, len(commits), repo, strings.Join(names, ", "))
}

// subject returns the first line of a commit message.
func subject(msg string) string {
	line, _, _ := strings.Cut(strings.TrimLeft(msg, "\n"), "\n")
	return strings.TrimSpace(line)
}
