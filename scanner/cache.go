package scanner

import (
	"container/list"
	"context"
	"encoding/hex"
	"os"
	"strconv"
	"sync"
	"time"
)

// Cache is the verdict cache (verdict_cache): a Scanner round another that
// keeps the verdicts it gave, by the hash (BLAKE3-256) and size of the object, so
// that an object already scanned with the engine's current signatures (a
// popular download, a mail sent to many) costs a lookup, not a scan.
//
// Only clean, infected and riskware verdicts are kept: a suspected one
// (a limit, a timeout of the engine's own) may not hold the next time, and
// an error is never a verdict. Objects with no sum and prefix scans
// (Partial) go to the engine.
//
// An object past 64 KiB is summed only when the cache has met it, or one
// that starts alike, before: by the hash of its first 64 KiB
// (Object.Head, kept by the spool at no cost). The first time, it is
// scanned unsummed (Object.ReadSum not called) and its head remembered
// (as many heads as the cache keeps verdicts, 4096 at least); the second
// time, the spool hashes it as it arrives (MetHead, which
// spool.Dir.SumAhead asks) or reads it back, and it is scanned and its
// verdict kept; after that, it is answered from the cache. Summing costs about what the bundled engine's scan of the same
// bytes does (a 100 MiB download: 35-40 ms of its 95 ms of spooling on
// two cores; 1 MiB objects: a fifth of the HTTP worker's time), so an
// object seen once, the common case, is not summed past its head. With a
// Shared store, an object up to 4 MiB is always summed (read back), so
// that what another gateway scanned answers it the first time here. The
// head only says when to sum: the key is always the sum of every byte.
//
// The cache belongs to one signature version. The engine is asked for its
// version (RefreshVersion) when it was last asked more than Every ago, and
// after every engine call its version is read again; when it changed, the
// cache is emptied. So a verdict is used at most Every after the engine
// loaded new signatures, and an engine whose version is not known (it does
// not say, or does not answer) has nothing cached.
type Cache struct {
	Scanner Scanner
	Max     int           // verdicts kept; the least recently used goes first
	Every   time.Duration // how often the engine's version is asked (zero: 30 s)
	// Shared, when set, is asked on a miss and given every verdict kept
	// (verdict_cache_redis): the fleet's verdicts behind this one.
	Shared Shared

	mu      sync.Mutex
	version string
	asked   time.Time // when the version was last asked
	asking  bool
	order   *list.List // of *cacheEntry, most recently used first
	byKey   map[cacheKey]*list.Element
	// met are the heads of objects scanned without their sum (ReadSum
	// not called), up to metMax (then it starts again); keptHeads counts
	// the kept verdicts by head.
	met       map[[32]byte]struct{}
	keptHeads map[[32]byte]int
}

// sharedSumMax is the largest object summed for the Shared store
// whether or not this cache met it before.
const sharedSumMax = 4 << 20

// minMet is the fewest objects scanned unsummed that are remembered; a
// cache of more verdicts remembers as many (every object past the spool's
// 64 KiB head is one; 66 bytes each, measured at 20,000).
const minMet = 4096

func (c *Cache) metMax() int { return max(minMet, c.Max) }

type cacheKey struct {
	sum  [32]byte
	size int64
}

type cacheEntry struct {
	key     cacheKey
	head    *[32]byte // an object past 4 MiB: its head
	verdict Verdict
}

// NewCache wraps s in a cache of max verdicts.
func NewCache(s Scanner, max int) *Cache {
	return &Cache{Scanner: s, Max: max}
}

// DefaultVersionEvery is how often the cache asks the engine its version
// when Every is zero.
const DefaultVersionEvery = 30 * time.Second

func (c *Cache) every() time.Duration {
	if c.Every > 0 {
		return c.Every
	}
	return DefaultVersionEvery
}

// Scan gives a kept verdict (Cached set) or has the engine scan obj.
func (c *Cache) Scan(ctx context.Context, obj *Object) (Verdict, error) {
	vs, ok := c.Scanner.(Versioner)
	if !ok || obj.Sum == nil && obj.ReadSum == nil || obj.Partial || c.Max <= 0 {
		return c.Scanner.Scan(ctx, obj)
	}
	c.refresh(ctx, vs)
	sum, head := obj.Sum, obj.Head
	if sum == nil {
		if head == nil || !c.metBefore(*head) && (c.Shared == nil || obj.Size > sharedSumMax) {
			return c.Scanner.Scan(ctx, obj)
		}
		s, ok := obj.ReadSum()
		if !ok {
			return c.Scanner.Scan(ctx, obj)
		}
		sum = &s
	}
	key := cacheKey{sum: *sum, size: obj.Size}
	c.mu.Lock()
	version := c.version
	if el, ok := c.byKey[key]; ok && version != "" {
		c.order.MoveToFront(el)
		v := el.Value.(*cacheEntry).verdict
		c.mu.Unlock()
		v.Cached = true
		return v, nil
	}
	c.mu.Unlock()
	if c.Shared != nil && version != "" {
		if v, ok := c.Shared.Get(ctx, sharedKey(version, key)); ok {
			c.keep(key, head, v, version)
			v.Cached = true
			return v, nil
		}
	}
	v, err := c.Scanner.Scan(ctx, obj)
	if err != nil {
		return v, err
	}
	// A new connection may have told a new version (fsavd's greeting).
	c.sawVersion(vs.Version())
	if v.Status == Suspected {
		return v, nil
	}
	if c.keep(key, head, v, version) && c.Shared != nil {
		c.Shared.Put(sharedKey(version, key), v)
	}
	return v, nil
}

// sharedKey names a verdict in the shared store: the signature version,
// the object's hash and size.
func sharedKey(version string, k cacheKey) string {
	return "fsigkd:v1:" + version + ":" + hex.EncodeToString(k.sum[:]) + ":" + strconv.FormatInt(k.size, 10)
}

// keep keeps v for key when the signatures are still those of version;
// false when they changed (the verdict is not kept anywhere).
func (c *Cache) keep(key cacheKey, head *[32]byte, v Verdict, version string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version == "" || c.version != version {
		return false // the signatures changed during the scan: not kept
	}
	if el, ok := c.byKey[key]; ok {
		el.Value.(*cacheEntry).verdict = v
		c.order.MoveToFront(el)
		return true
	}
	c.byKey[key] = c.order.PushFront(&cacheEntry{key: key, head: head, verdict: v})
	if head != nil {
		c.keptHeads[*head]++
	}
	for c.order.Len() > c.Max {
		last := c.order.Back()
		c.order.Remove(last)
		e := last.Value.(*cacheEntry)
		delete(c.byKey, e.key)
		if e.head != nil {
			if c.keptHeads[*e.head]--; c.keptHeads[*e.head] == 0 {
				delete(c.keptHeads, *e.head)
			}
		}
	}
	return true
}

// metBefore tells whether an object with this head was scanned before
// (a verdict of one is kept, or one was scanned unsummed), and remembers
// it when not.
func (c *Cache) metBefore(head [32]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.metLocked(head) {
		return true
	}
	if c.met == nil || len(c.met) >= c.metMax() {
		c.met = map[[32]byte]struct{}{}
	}
	c.met[head] = struct{}{}
	return false
}

func (c *Cache) metLocked(head [32]byte) bool {
	_, ok := c.met[head]
	return ok || c.keptHeads[head] > 0
}

// MetHead tells whether an object whose first 4 MiB hash to head was
// met before: the spool then hashes the rest as it arrives
// (spool.Dir.SumAhead), as the cache will want its sum.
func (c *Cache) MetHead(head [32]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.metLocked(head)
}

// refresh asks the engine its version when it was last asked more than
// Every ago. One caller asks; the others go on with the version known.
func (c *Cache) refresh(ctx context.Context, vs Versioner) {
	c.mu.Lock()
	if c.byKey == nil {
		c.byKey, c.order, c.keptHeads = map[cacheKey]*list.Element{}, list.New(), map[[32]byte]int{}
	}
	if c.asking || time.Since(c.asked) < c.every() {
		c.mu.Unlock()
		return
	}
	c.asking = true
	c.mu.Unlock()
	err := vs.RefreshVersion(ctx)
	version := vs.Version()
	c.mu.Lock()
	c.asking, c.asked = false, time.Now()
	c.mu.Unlock()
	if err != nil {
		// Not known now: nothing is used or kept until it is.
		version = ""
	}
	c.sawVersion(version)
}

// sawVersion empties the cache when the engine's version is not the one
// its verdicts were given under.
func (c *Cache) sawVersion(v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v == c.version {
		return
	}
	c.version = v
	c.empty()
}

// empty drops every verdict; the objects met stay (they are not
// verdicts).
func (c *Cache) empty() {
	clear(c.byKey)
	clear(c.keptHeads)
	c.order.Init()
}

// Expire drops every verdict and has the engine's version asked again at
// the next scan: new signatures are being loaded (SIGHUP).
func (c *Cache) Expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey != nil {
		c.empty()
	}
	c.asked = time.Time{}
}

// Len is how many verdicts are kept.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.order == nil {
		return 0
	}
	return c.order.Len()
}

// Version is the wrapped engine's (so that the cache is a Versioner).
func (c *Cache) Version() string {
	if vs, ok := c.Scanner.(Versioner); ok {
		return vs.Version()
	}
	return ""
}

// Follow starts the wrapped engine's follow of file, when it follows.
func (c *Cache) Follow(ctx context.Context, file *os.File) *Following {
	if fl, ok := c.Scanner.(Follower); ok {
		return fl.Follow(ctx, file)
	}
	return nil
}

// RefreshVersion asks the wrapped engine.
func (c *Cache) RefreshVersion(ctx context.Context) error {
	if vs, ok := c.Scanner.(Versioner); ok {
		return vs.RefreshVersion(ctx)
	}
	return nil
}

// SetRules passes the rules to the wrapped engine, when it takes them.
func (c *Cache) SetRules(types, names string) {
	if rs, ok := c.Scanner.(RuleSetter); ok {
		rs.SetRules(types, names)
	}
}

// Ping pings the wrapped engine, when it can.
func (c *Cache) Ping(ctx context.Context) error {
	if p, ok := c.Scanner.(Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}
