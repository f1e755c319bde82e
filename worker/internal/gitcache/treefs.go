package gitcache

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// treeFS is a commit's tree as an fs.FS, read straight from the object store. It is safe for
// concurrent use (one mutex guards the store, which is not). Regular files have mode 0644 or
// 0755 and the commit's time; symbolic links are listed with fs.ModeSymlink and submodules with
// fs.ModeIrregular, and opening either fails: neither has content inside this repository.
type treeFS struct {
	mu   sync.Mutex
	st   *filesystem.Storage
	root *object.Tree
	when time.Time
}

var (
	_ fs.ReadDirFS  = (*treeFS)(nil)
	_ fs.ReadFileFS = (*treeFS)(nil)
	_ fs.StatFS     = (*treeFS)(nil)
)

// node is one path of the tree: the root, or an entry of a directory.
type node struct {
	name  string
	entry object.TreeEntry // zero for the root
	root  bool
}

func (n node) dir() bool { return n.root || n.entry.Mode == filemode.Dir }

// find looks up name (an fs.ValidPath). Callers hold f.mu.
func (f *treeFS) find(op, name string) (node, error) {
	if !fs.ValidPath(name) {
		return node{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return node{name: ".", root: true}, nil
	}
	dir := f.root
	parts := strings.Split(name, "/")
	for i, part := range parts {
		e, ok := entry(dir, part)
		if !ok {
			return node{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		if i == len(parts)-1 {
			return node{name: e.Name, entry: e}, nil
		}
		if e.Mode != filemode.Dir {
			return node{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
		}
		sub, err := object.GetTree(f.st, e.Hash)
		if err != nil {
			return node{}, &fs.PathError{Op: op, Path: name, Err: err}
		}
		dir = sub
	}
	return node{}, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
}

// entry finds name among the entries of t.
func entry(t *object.Tree, name string) (object.TreeEntry, bool) {
	for _, e := range t.Entries {
		if e.Name == name {
			return e, true
		}
	}
	return object.TreeEntry{}, false
}

func (f *treeFS) tree(n node) (*object.Tree, error) {
	if n.root {
		return f.root, nil
	}
	return object.GetTree(f.st, n.entry.Hash)
}

// Open opens a file or directory of the tree.
func (f *treeFS) Open(name string) (fs.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.find("open", name)
	if err != nil {
		return nil, err
	}
	if n.dir() {
		entries, err := f.readDir(n)
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		return &dirFile{info: f.info(n, 0), entries: entries}, nil
	}
	data, err := f.content(n)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &blobFile{info: f.info(n, int64(len(data))), Reader: bytes.NewReader(data)}, nil
}

// ReadFile returns the content of a regular file.
func (f *treeFS) ReadFile(name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.find("readfile", name)
	if err != nil {
		return nil, err
	}
	if n.dir() {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: errors.New("is a directory")}
	}
	data, err := f.content(n)
	if err != nil {
		return nil, &fs.PathError{Op: "readfile", Path: name, Err: err}
	}
	return data, nil
}

// ReadDir lists a directory, sorted by name.
func (f *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.find("readdir", name)
	if err != nil {
		return nil, err
	}
	if !n.dir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	entries, err := f.readDir(n)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	return entries, nil
}

// Stat describes a file or directory.
func (f *treeFS) Stat(name string) (fs.FileInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.find("stat", name)
	if err != nil {
		return nil, err
	}
	size, err := f.size(n)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return f.info(n, size), nil
}

func (f *treeFS) readDir(n node) ([]fs.DirEntry, error) {
	t, err := f.tree(n)
	if err != nil {
		return nil, err
	}
	out := make([]fs.DirEntry, 0, len(t.Entries))
	for _, e := range t.Entries {
		if e.Name == "" || e.Name == "." || e.Name == ".." || strings.ContainsAny(e.Name, "/\x00") {
			continue // a crafted tree; such a name cannot be opened through fs.FS anyway
		}
		out = append(out, &dirEntry{fsys: f, n: node{name: e.Name, entry: e}})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func (f *treeFS) content(n node) ([]byte, error) {
	if n.entry.Mode != filemode.Regular && n.entry.Mode != filemode.Executable && n.entry.Mode != filemode.Deprecated {
		return nil, fmt.Errorf("%s is not a regular file (mode %s)", n.name, n.entry.Mode)
	}
	b, err := object.GetBlob(f.st, n.entry.Hash)
	if err != nil {
		return nil, err
	}
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// size is a regular file's length, 0 for anything else.
func (f *treeFS) size(n node) (int64, error) {
	switch n.entry.Mode {
	case filemode.Regular, filemode.Executable, filemode.Deprecated:
		return f.st.EncodedObjectSize(n.entry.Hash)
	}
	return 0, nil
}

func (f *treeFS) info(n node, size int64) *fileInfo {
	return &fileInfo{name: n.name, size: size, mode: mode(n), mod: f.when}
}

func mode(n node) fs.FileMode {
	if n.root {
		return fs.ModeDir | 0o755
	}
	switch n.entry.Mode {
	case filemode.Dir:
		return fs.ModeDir | 0o755
	case filemode.Executable:
		return 0o755
	case filemode.Symlink:
		return fs.ModeSymlink | 0o777
	case filemode.Submodule:
		return fs.ModeIrregular
	}
	return 0o644
}

type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
	mod  time.Time
}

func (i *fileInfo) Name() string       { return i.name }
func (i *fileInfo) Size() int64        { return i.size }
func (i *fileInfo) Mode() fs.FileMode  { return i.mode }
func (i *fileInfo) ModTime() time.Time { return i.mod }
func (i *fileInfo) IsDir() bool        { return i.mode.IsDir() }
func (i *fileInfo) Sys() any           { return nil }

type dirEntry struct {
	fsys *treeFS
	n    node
}

func (e *dirEntry) Name() string      { return e.n.name }
func (e *dirEntry) IsDir() bool       { return e.n.dir() }
func (e *dirEntry) Type() fs.FileMode { return mode(e.n).Type() }
func (e *dirEntry) Info() (fs.FileInfo, error) {
	e.fsys.mu.Lock()
	defer e.fsys.mu.Unlock()
	size, err := e.fsys.size(e.n)
	if err != nil {
		return nil, err
	}
	return e.fsys.info(e.n, size), nil
}
func (e *dirEntry) String() string { return fs.FormatDirEntry(e) }

// blobFile is an open regular file, its content read at Open.
type blobFile struct {
	info *fileInfo
	*bytes.Reader
}

func (b *blobFile) Stat() (fs.FileInfo, error) { return b.info, nil }
func (b *blobFile) Close() error               { return nil }

// dirFile is an open directory.
type dirFile struct {
	info    *fileInfo
	entries []fs.DirEntry
	off     int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}

// ReadDir follows fs.ReadDirFile: n > 0 returns at most n entries and io.EOF at the end.
func (d *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.entries[d.off:]
	if n <= 0 {
		d.off = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.off += n
	return rest[:n], nil
}

// commitFS returns the tree of c as a treeFS.
func commitFS(st *filesystem.Storage, c *object.Commit) (*treeFS, error) {
	t, err := object.GetTree(st, c.TreeHash)
	if err != nil {
		return nil, fmt.Errorf("read tree %s of commit %s: %w", c.TreeHash, c.Hash, err)
	}
	return &treeFS{st: st, root: t, when: c.Committer.When}, nil
}
