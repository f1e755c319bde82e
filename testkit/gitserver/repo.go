package gitserver

import (
	"errors"
	"path"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// mainBranch is the branch Commit writes to and HEAD points at.
const mainBranch = plumbing.ReferenceName("refs/heads/main")

// epoch is the author and committer time of a repository's first commit; each later commit is
// one second later, so fixtures are deterministic.
func epoch() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// Repo is a bare fixture repository served by a Server. Its methods are safe for concurrent use.
type Repo struct {
	url string
	dir string

	mu      sync.Mutex
	st      *filesystem.Storage
	commits int
}

func initRepo(t testing.TB, dir, url string) *Repo {
	t.Helper()
	st := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
	if _, err := git.InitWithOptions(st, nil, git.InitOptions{DefaultBranch: mainBranch}); err != nil {
		t.Fatalf("gitserver: init %s: %v", dir, err)
	}
	return &Repo{url: url, dir: dir, st: st}
}

// URL returns the repository's clone URL.
func (r *Repo) URL() string { return r.url }

// Dir returns the bare repository's directory on disk.
func (r *Repo) Dir() string { return r.dir }

// Commit writes a commit on main whose tree is exactly files (slash-separated path → content) and
// whose parent is main's previous commit, moves main to it and returns its full SHA.
func (r *Repo) Commit(t testing.TB, msg string, files map[string]string) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	sha, err := r.commit(msg, files)
	if err != nil {
		t.Fatalf("gitserver: commit %q in %s: %v", msg, r.dir, err)
	}
	return sha.String()
}

// Head returns the full SHA main points at, or "" before the first commit.
func (r *Repo) Head(t testing.TB) string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	ref, err := r.st.Reference(mainBranch)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return ""
	}
	if err != nil {
		t.Fatalf("gitserver: read main in %s: %v", r.dir, err)
	}
	return ref.Hash().String()
}

// Branch points refs/heads/<name> at sha, creating or moving it.
func (r *Repo) Branch(t testing.TB, name, sha string) {
	t.Helper()
	r.setRef(t, plumbing.NewBranchReferenceName(name), sha)
}

// Tag points the lightweight tag refs/tags/<name> at sha.
func (r *Repo) Tag(t testing.TB, name, sha string) {
	t.Helper()
	r.setRef(t, plumbing.NewTagReferenceName(name), sha)
}

// AnnotatedTag writes a tag object for the commit sha, points refs/tags/<name> at it and returns
// the tag object's SHA (which is not the commit's).
func (r *Repo) AnnotatedTag(t testing.TB, name, sha, msg string) string {
	t.Helper()
	r.mu.Lock()
	tag := &object.Tag{
		Name:       name,
		Tagger:     r.signature(),
		Message:    msg + "\n",
		TargetType: plumbing.CommitObject,
		Target:     plumbing.NewHash(sha),
	}
	h, err := r.store(tag)
	r.mu.Unlock()
	if err != nil {
		t.Fatalf("gitserver: tag %s in %s: %v", name, r.dir, err)
	}
	r.setRef(t, plumbing.NewTagReferenceName(name), h.String())
	return h.String()
}

func (r *Repo) setRef(t testing.TB, name plumbing.ReferenceName, sha string) {
	t.Helper()
	if len(sha) != 40 {
		t.Fatalf("gitserver: %s: %q is not a full SHA", name, sha)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.st.SetReference(plumbing.NewHashReference(name, plumbing.NewHash(sha))); err != nil {
		t.Fatalf("gitserver: set %s in %s: %v", name, r.dir, err)
	}
}

func (r *Repo) signature() object.Signature {
	when := epoch().Add(time.Duration(r.commits) * time.Second)
	r.commits++
	return object.Signature{Name: "Fixture", Email: "fixture@gitserver.invalid", When: when}
}

func (r *Repo) commit(msg string, files map[string]string) (plumbing.Hash, error) {
	tree, err := r.writeTree(files)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	sig := r.signature()
	c := &object.Commit{Author: sig, Committer: sig, Message: msg + "\n", TreeHash: tree}
	parent, err := r.st.Reference(mainBranch)
	switch {
	case err == nil:
		c.ParentHashes = []plumbing.Hash{parent.Hash()}
	case !errors.Is(err, plumbing.ErrReferenceNotFound):
		return plumbing.ZeroHash, err
	}
	h, err := r.store(c)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	return h, r.st.SetReference(plumbing.NewHashReference(mainBranch, h))
}

// encoder is an object go-git can encode: *object.Commit, *object.Tree, *object.Tag.
type encoder interface {
	Encode(plumbing.EncodedObject) error
}

func (r *Repo) store(o encoder) (plumbing.Hash, error) {
	obj := r.st.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return r.st.SetEncodedObject(obj)
}

func (r *Repo) storeBlob(content string) (plumbing.Hash, error) {
	obj := r.st.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write([]byte(content)); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return r.st.SetEncodedObject(obj)
}

// dirNode is a directory being built: files by name, subdirectories by name.
type dirNode struct {
	files map[string]string
	dirs  map[string]*dirNode
}

func (r *Repo) writeTree(files map[string]string) (plumbing.Hash, error) {
	root := &dirNode{files: map[string]string{}, dirs: map[string]*dirNode{}}
	for p, content := range files {
		clean := path.Clean(p)
		if clean != p || strings.HasPrefix(p, "/") || p == "." || strings.HasPrefix(p, "../") {
			return plumbing.ZeroHash, errors.New("file path " + p + " is not clean and relative")
		}
		node := root
		parts := strings.Split(p, "/")
		for _, dir := range parts[:len(parts)-1] {
			next, ok := node.dirs[dir]
			if !ok {
				next = &dirNode{files: map[string]string{}, dirs: map[string]*dirNode{}}
				node.dirs[dir] = next
			}
			node = next
		}
		node.files[parts[len(parts)-1]] = content
	}
	return r.storeDir(root)
}

func (r *Repo) storeDir(d *dirNode) (plumbing.Hash, error) {
	var entries []object.TreeEntry
	for name, content := range d.files {
		h, err := r.storeBlob(content)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: h})
	}
	for name, sub := range d.dirs {
		if _, clash := d.files[name]; clash {
			return plumbing.ZeroHash, errors.New(name + " is both a file and a directory")
		}
		h, err := r.storeDir(sub)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		entries = append(entries, object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
	}
	// git orders tree entries by name, comparing a directory's name as if it ended in "/".
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(entries, func(i, j int) bool { return key(entries[i]) < key(entries[j]) })
	return r.store(&object.Tree{Entries: entries})
}
