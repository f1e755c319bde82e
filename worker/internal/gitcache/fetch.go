package gitcache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// maxHaves bounds the local ref tips announced to the server as already present.
const maxHaves = 256

// fetchResult is what a fetch learned and did.
type fetchResult struct {
	// refs are the server's advertised references by full name ("refs/heads/main", "HEAD").
	refs map[string]plumbing.Hash
	// downloaded reports whether the server sent a pack.
	downloaded bool
	// bytes is how much the HTTP responses (or the SSH connection) carried.
	bytes int64
}

// fetcher is one fetch from one repository into one cache entry.
type fetcher struct {
	st       *filesystem.Storage
	u        *url.URL
	ref      string
	auth     *githttp.BasicAuth
	progress func(string)
}

// run fetches what resolving ref needs: when ref is a branch or tag the server advertises, only
// that ref; otherwise every branch and tag; and for a full SHA still missing after that, the
// commit itself when the server allows asking for it.
func (f *fetcher) run(ctx context.Context, client transport.Transport) (fetchResult, error) {
	ep, err := transport.NewEndpoint(f.u.String())
	if err != nil {
		return fetchResult{}, fmt.Errorf("endpoint: %w", err)
	}
	var auth transport.AuthMethod
	if f.auth != nil {
		auth = f.auth
	}
	sess, err := client.NewUploadPackSession(ep, auth)
	if err != nil {
		return fetchResult{}, fmt.Errorf("open session: %w", err)
	}
	defer sess.Close()
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return fetchResult{}, fmt.Errorf("list references: %w", err)
	}
	res := fetchResult{refs: advertisedRefs(ar)}
	wanted := wantedRefs(f.ref, res.refs)
	wants, err := f.missing(wanted)
	if err != nil {
		return res, err
	}
	if len(wants) > 0 {
		if err := f.uploadPack(ctx, sess, ar.Capabilities, wants); err != nil {
			return res, fmt.Errorf("fetch objects: %w", err)
		}
		res.downloaded = true
	}
	if sha, ok := fullSHA(f.ref); ok && canWantSHA(ar.Capabilities) {
		if has, _ := f.has(sha); !has {
			err := f.uploadPack(ctx, sess, ar.Capabilities, []plumbing.Hash{sha})
			if err != nil && !notOurRef(err) {
				return res, fmt.Errorf("fetch commit %s: %w", sha, err)
			}
			res.downloaded = res.downloaded || err == nil
		}
	}
	return res, f.updateRefs(wanted)
}

// advertisedRefs maps the server's references by name, HEAD included when the server resolves it.
func advertisedRefs(ar *packp.AdvRefs) map[string]plumbing.Hash {
	refs := make(map[string]plumbing.Hash, len(ar.References)+1)
	for name, h := range ar.References {
		refs[name] = h
	}
	if ar.Head != nil {
		refs["HEAD"] = *ar.Head
	}
	return refs
}

// refCandidates lists the full reference names ref may mean, in resolution order: branch, tag,
// then ref as a full name ("refs/heads/main", "HEAD").
func refCandidates(ref string) []string {
	c := []string{"refs/heads/" + ref, "refs/tags/" + ref}
	if ref == "HEAD" || strings.HasPrefix(ref, "refs/") {
		c = append(c, ref)
	}
	return c
}

// wantedRefs picks the references to fetch for ref: the one branch or tag it names when the
// server has it (and ref is not a full SHA, which takes precedence), else every branch and tag.
func wantedRefs(ref string, refs map[string]plumbing.Hash) map[string]plumbing.Hash {
	if _, sha := fullSHA(ref); !sha {
		for _, name := range refCandidates(ref) {
			if h, ok := refs[name]; ok {
				return map[string]plumbing.Hash{name: h}
			}
		}
	}
	all := map[string]plumbing.Hash{}
	for name, h := range refs {
		if strings.HasPrefix(name, "refs/heads/") || strings.HasPrefix(name, "refs/tags/") {
			all[name] = h
		}
	}
	return all
}

func canWantSHA(caps *capability.List) bool {
	return caps.Supports(capability.AllowReachableSHA1InWant) || caps.Supports(capability.AllowTipSHA1InWant)
}

// notOurRef reports whether the server refused a wanted SHA it does not have or will not give.
func notOurRef(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "not our ref") || strings.Contains(msg, "want ") && strings.Contains(msg, "not valid")
}

func (f *fetcher) has(h plumbing.Hash) (bool, error) {
	err := f.st.HasEncodedObject(h)
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		return false, nil
	}
	return err == nil, err
}

// missing returns the distinct hashes of refs that are not in the cache yet.
func (f *fetcher) missing(refs map[string]plumbing.Hash) ([]plumbing.Hash, error) {
	seen := map[plumbing.Hash]bool{}
	var out []plumbing.Hash
	for _, h := range refs {
		if seen[h] {
			continue
		}
		seen[h] = true
		has, err := f.has(h)
		if err != nil {
			return nil, fmt.Errorf("look up %s: %w", h, err)
		}
		if !has {
			out = append(out, h)
		}
	}
	return out, nil
}

// haves lists the tips of the cache entry's branches and tags, so the server sends only what is new.
func (f *fetcher) haves() []plumbing.Hash {
	iter, err := f.st.IterReferences()
	if err != nil {
		return nil
	}
	defer iter.Close()
	seen := map[plumbing.Hash]bool{}
	var out []plumbing.Hash
	_ = iter.ForEach(func(r *plumbing.Reference) error {
		if r.Type() != plumbing.HashReference || seen[r.Hash()] || len(out) >= maxHaves {
			return nil
		}
		if has, _ := f.has(r.Hash()); has {
			seen[r.Hash()] = true
			out = append(out, r.Hash())
		}
		return nil
	})
	return out
}

// uploadPack asks the server for wants and writes the pack it sends into the cache entry.
func (f *fetcher) uploadPack(ctx context.Context, sess transport.UploadPackSession, caps *capability.List, wants []plumbing.Hash) error {
	req := packp.NewUploadPackRequestFromCapabilities(caps)
	// A thin pack's deltas may refer to objects outside it; the pack writer indexes the pack on
	// its own, so ask for self-contained packs.
	req.Capabilities.Delete(capability.ThinPack)
	if f.progress == nil && caps.Supports(capability.NoProgress) {
		if err := req.Capabilities.Set(capability.NoProgress); err != nil {
			return err
		}
	}
	req.Wants = wants
	req.Haves = f.haves()
	resp, err := sess.UploadPack(ctx, req)
	if errors.Is(err, transport.ErrEmptyUploadPackRequest) {
		return nil
	}
	if err != nil {
		return err
	}
	defer resp.Close()
	var pack io.Reader = resp
	switch {
	case req.Capabilities.Supports(capability.Sideband64k):
		d := sideband.NewDemuxer(sideband.Sideband64k, resp)
		if f.progress != nil {
			d.Progress = newProgressWriter(f.progress)
		}
		pack = d
	case req.Capabilities.Supports(capability.Sideband):
		d := sideband.NewDemuxer(sideband.Sideband, resp)
		if f.progress != nil {
			d.Progress = newProgressWriter(f.progress)
		}
		pack = d
	}
	if err := packfile.UpdateObjectStorage(f.st, pack); err != nil && !errors.Is(err, packfile.ErrEmptyPackfile) {
		return err
	}
	return nil
}

// updateRefs records the fetched references in the cache entry, where later fetches announce
// them as haves.
func (f *fetcher) updateRefs(refs map[string]plumbing.Hash) error {
	for name, h := range refs {
		if has, _ := f.has(h); !has {
			continue
		}
		ref := plumbing.NewHashReference(plumbing.ReferenceName(name), h)
		if name == "HEAD" {
			ref = plumbing.NewHashReference("refs/brain/HEAD", h)
		}
		if err := f.st.SetReference(ref); err != nil {
			return fmt.Errorf("record %s: %w", name, err)
		}
	}
	return nil
}
