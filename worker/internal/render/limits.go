package render

import (
	"fmt"
	"io"
	"io/fs"

	"github.com/backendim/brain/proto"
)

// withDefaults replaces every field that is zero or negative by its default, so a zero Limits
// means the documented defaults rather than "nothing allowed".
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFiles <= 0 {
		l.MaxFiles = d.MaxFiles
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = d.MaxTotalBytes
	}
	if l.MaxObjects <= 0 {
		l.MaxObjects = d.MaxObjects
	}
	return l
}

// budget counts what one Render has read and made, and refuses what goes over its Limits.
type budget struct {
	lim     Limits
	files   int
	bytes   int64
	objects int
}

// admitFile counts one more file of the given size.
func (b *budget) admitFile(name string, size int64) error {
	if b.files+1 > b.lim.MaxFiles {
		return b.tooManyFiles()
	}
	if size > b.lim.MaxFileBytes {
		return proto.Errorf(proto.CodeManifestLimit,
			"%s is %s, more than the %s allowed for one manifest file (RENDER_MAX_FILE_BYTES=%d); split it or ask the operator to raise the limit",
			name, byteSize(size), byteSize(b.lim.MaxFileBytes), b.lim.MaxFileBytes)
	}
	if b.bytes+size > b.lim.MaxTotalBytes {
		return proto.Errorf(proto.CodeManifestLimit,
			"manifest files add up to more than %s (RENDER_MAX_TOTAL_BYTES=%d) at %s; deploy less or ask the operator to raise the limit",
			byteSize(b.lim.MaxTotalBytes), b.lim.MaxTotalBytes, name)
	}
	b.files++
	b.bytes += size
	return nil
}

// tooManyFiles is the error for more files than MaxFiles.
func (b *budget) tooManyFiles() error {
	return proto.Errorf(proto.CodeManifestLimit,
		"more than %d manifest files to read (RENDER_MAX_FILES=%d); deploy fewer files or ask the operator to raise the limit",
		b.lim.MaxFiles, b.lim.MaxFiles)
}

// admitObjects counts n more objects.
func (b *budget) admitObjects(n int) error {
	if b.objects+n > b.lim.MaxObjects {
		return proto.Errorf(proto.CodeManifestLimit,
			"more than %d Kubernetes objects (RENDER_MAX_OBJECTS=%d); deploy fewer objects or ask the operator to raise the limit",
			b.lim.MaxObjects, b.lim.MaxObjects)
	}
	b.objects += n
	return nil
}

// readFile reads name from fsys within the budget: the size is checked before reading, and the
// read stops one byte past the per-file limit in case the size was not what Stat said.
func (b *budget) readFile(fsys fs.FS, name string) ([]byte, error) {
	fi, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", name, err)
	}
	if err := b.admitFile(name, fi.Size()); err != nil {
		return nil, err
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, b.lim.MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if n := int64(len(data)); n != fi.Size() {
		b.files--
		b.bytes -= fi.Size()
		if err := b.admitFile(name, n); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// byteSize formats n for people: "512 B", "1 MiB", "1.5 MiB".
func byteSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	suffix := []string{"KiB", "MiB", "GiB", "TiB"}[exp]
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %s", int64(v), suffix)
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}
