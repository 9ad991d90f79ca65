// Package quarantine keeps what the gateway blocked (quarantine = yes):
// the object as it arrived (the body as the server sent it, the whole
// mail), and beside it what is known of it, so that an administrator can
// look at it later, release it (a file written out, a mail sent on to its
// recipients) or delete it.
//
// An entry is two files in quarantine_dir: <id>.data, the object, and
// <id>.json, its metadata, written last: an entry without its .json (a
// worker that died while copying) is not listed, and the next prune
// removes it. Ids sort by time ("20261128-101500-3fa2c1d0"). Several
// workers may add at once: each file is written under a temporary name
// and renamed. The store is bounded by quarantine_max_size (the oldest go
// first) and quarantine_days, enforced as entries are added (once a
// minute per process, and at once when a tenth of quarantine_max_size has
// come in since) and by `fsigkd quarantine list`.
//
// One quarantine for a fleet: quarantine_dir may be shared storage (NFS)
// that several gateways write at once. A file gets its final name by a
// hard link, which fails rather than replace one that exists (so two
// gateways that drew the same id never overwrite each other: the second
// draws again), and its metadata last, by the same link: on NFS both are
// atomic. Each entry names the gateway that kept it. Any gateway lists,
// shows, releases and deletes any entry; each release and deletion is
// recorded, with the gateway and the user who did it, in
// quarantine_dir/log/<gateway>.log (one file per gateway, appended by it
// alone: appends from several NFS clients to one file are not atomic).
// Pruning from several gateways at once removes each entry once.
package quarantine

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Meta is what is kept beside an object.
type Meta struct {
	ID          string    `json:"id"`
	Time        time.Time `json:"time"`
	Service     string    `json:"service"`
	Client      string    `json:"client,omitempty"`
	URL         string    `json:"url,omitempty"`
	Sender      string    `json:"sender,omitempty"`
	Recipients  []string  `json:"recipients,omitempty"`
	Verdict     string    `json:"verdict"`          // the detection names, or the rule
	Member      string    `json:"member,omitempty"` // where inside the object
	ContentType string    `json:"content_type,omitempty"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	Gateway     string    `json:"gateway,omitempty"` // the host that kept it
}

// Store is a quarantine directory and its bounds.
type Store struct {
	Dir     string
	MaxSize int64         // bytes of objects kept in all (0: no bound)
	MaxAge  time.Duration // older entries go (0: no bound)
	// Gateway names this gateway in the entries it keeps and the actions
	// it records ("": the host's name).
	Gateway string

	mu     sync.Mutex
	pruned time.Time
	added  int64 // bytes put since the last prune
}

// pruneEvery is the least time between two prunes by one process.
const pruneEvery = time.Minute

var idPattern = regexp.MustCompile(`^[0-9]{8}-[0-9]{6}-[0-9a-f]{8}$`)

// ValidID tells whether id is an entry's name (and so safe in a path).
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Put keeps size bytes of src as a new entry with m (its ID, Time, Size
// and SHA256 are filled here) and gives its id.
func (s *Store) Put(src io.ReaderAt, size int64, m Meta) (string, error) {
	if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		return "", err
	}
	m.Size, m.Gateway = size, s.gateway()
	h := sha256.New()
	tmp, err := s.temp(io.TeeReader(io.NewSectionReader(src, 0, size), h))
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	// A name no one has: linked, never renamed over another's.
	for tries := 0; ; tries++ {
		m.Time = time.Now().UTC()
		m.ID = newID(m.Time)
		err = place(tmp, filepath.Join(s.Dir, m.ID+".data"))
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrExist) || tries == 9 {
			return "", err
		}
	}
	m.SHA256 = hex.EncodeToString(h.Sum(nil))
	meta, _ := json.MarshalIndent(m, "", "  ")
	if err := s.write(m.ID+".json", strings.NewReader(string(meta)+"\n")); err != nil {
		os.Remove(filepath.Join(s.Dir, m.ID+".data"))
		return "", err
	}
	// Pruned once a minute, and at once when a tenth of MaxSize came in
	// since: a flood of detections cannot fill the disk in between.
	s.mu.Lock()
	s.added += size
	due := time.Since(s.pruned) >= pruneEvery || s.MaxSize > 0 && s.added > s.MaxSize/10
	if due {
		s.pruned, s.added = time.Now(), 0
	}
	s.mu.Unlock()
	if due {
		s.Prune()
	}
	return m.ID, nil
}

// newID is an entry's name at t: its time and 32 random bits.
var newID = func(t time.Time) string {
	var rnd [4]byte
	rand.Read(rnd[:])
	return t.Format("20060102-150405") + "-" + hex.EncodeToString(rnd[:])
}

func (s *Store) gateway() string {
	if s.Gateway != "" {
		return s.Gateway
	}
	h, _ := os.Hostname()
	return h
}

// temp writes r to a new temporary file in the directory, readable by
// the gateway's user and group only, and gives its path.
func (s *Store) temp(r io.Reader) (string, error) {
	tmp, err := os.CreateTemp(s.Dir, ".tmp-*")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o640)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// write creates name in the directory from r: a temporary file first,
// then linked to name, which must not exist yet.
func (s *Store) write(name string, r io.Reader) error {
	tmp, err := s.temp(r)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	return place(tmp, filepath.Join(s.Dir, name))
}

// place gives the file tmp the name final, failing with os.ErrExist when
// final exists: by a hard link, atomic on a local disk and on NFS; where
// the file system has no hard links, by a rename after a look (which two
// writers could then race).
func place(tmp, final string) error {
	err := os.Link(tmp, final)
	if err == nil || errors.Is(err, os.ErrExist) {
		return err
	}
	if _, serr := os.Lstat(final); serr == nil {
		return os.ErrExist
	}
	return os.Rename(tmp, final)
}

// Record says in the gateway's own log, quarantine_dir/log/<gateway>.log,
// that who did action (release, delete) to the entry id, with detail.
func (s *Store) Record(action, id, who, detail string) error {
	dir := filepath.Join(s.Dir, "log")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	gw := s.gateway()
	f, err := os.OpenFile(filepath.Join(dir, strings.NewReplacer("/", "_", "..", "_").Replace(gw)+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("%s gateway=%s user=%s %s %s", time.Now().UTC().Format(time.RFC3339), gw, who, action, id)
	if detail != "" {
		line += " " + detail
	}
	_, err = f.WriteString(strings.NewReplacer("\r", " ", "\n", " ").Replace(line) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// List gives the entries, oldest first.
func (s *Store) List() ([]Meta, error) {
	names, err := filepath.Glob(filepath.Join(s.Dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Meta
	for _, n := range names {
		id := strings.TrimSuffix(filepath.Base(n), ".json")
		if !ValidID(id) {
			continue
		}
		m, err := s.Get(id)
		if err != nil {
			continue // removed meanwhile, or not ours
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Meta) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// ErrNoEntry is the error for an id the store does not hold.
var ErrNoEntry = errors.New("no such quarantine entry")

// Get reads an entry's metadata.
func (s *Store) Get(id string) (Meta, error) {
	if !ValidID(id) {
		return Meta{}, ErrNoEntry
	}
	b, err := os.ReadFile(filepath.Join(s.Dir, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return Meta{}, ErrNoEntry
	}
	if err != nil {
		return Meta{}, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("%s: %v", id, err)
	}
	return m, nil
}

// Open opens an entry's object.
func (s *Store) Open(id string) (*os.File, error) {
	if !ValidID(id) {
		return nil, ErrNoEntry
	}
	f, err := os.Open(filepath.Join(s.Dir, id+".data"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoEntry
	}
	return f, err
}

// Delete removes an entry.
func (s *Store) Delete(id string) error {
	if !ValidID(id) {
		return ErrNoEntry
	}
	err := os.Remove(filepath.Join(s.Dir, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return ErrNoEntry
	}
	if derr := os.Remove(filepath.Join(s.Dir, id+".data")); err == nil && !errors.Is(derr, os.ErrNotExist) {
		err = derr
	}
	return err
}

// withMeta are the ids of the entries whose metadata the listing holds.
func withMeta(ents []os.DirEntry) map[string]bool {
	ids := map[string]bool{}
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok {
			ids[id] = true
		}
	}
	return ids
}

// Usage is how many entries the store holds and their objects' bytes,
// from the directory's listing alone (an object being written, or left
// by a dead writer, has no metadata yet and is not counted).
func (s *Store) Usage() (entries int, bytes int64) {
	ents, _ := os.ReadDir(s.Dir)
	hasMeta := withMeta(ents)
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".data")
		if !ok || !ValidID(id) || !hasMeta[id] {
			continue
		}
		if info, err := e.Info(); err == nil {
			entries++
			bytes += info.Size()
		}
	}
	return entries, bytes
}

// Prune removes entries older than MaxAge, then the oldest until the
// objects fit in MaxSize, and what a dead writer left (temporary files
// and objects without metadata, an hour old); it gives how many entries
// went.
func (s *Store) Prune() int {
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		return 0
	}
	hasMeta := withMeta(ents)
	for _, e := range ents {
		id, isData := strings.CutSuffix(e.Name(), ".data")
		if strings.HasPrefix(e.Name(), ".tmp-") || isData && !hasMeta[id] {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
				os.Remove(filepath.Join(s.Dir, e.Name()))
			}
		}
	}
	list, err := s.List()
	if err != nil {
		return 0
	}
	n := 0
	var total int64
	for _, m := range list {
		total += m.Size
	}
	for _, m := range list { // oldest first
		if s.MaxAge > 0 && time.Since(m.Time) > s.MaxAge || s.MaxSize > 0 && total > s.MaxSize {
			if s.Delete(m.ID) == nil {
				n++
				total -= m.Size
			}
		}
	}
	return n
}
