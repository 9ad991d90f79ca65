package scanner

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Shared is a verdict store every gateway of a fleet reads and writes
// (verdict_cache_redis), behind each service's own cache: a file a
// thousand clients fetch through several gateways is scanned once, not
// once per gateway and worker. Keys name the engine's signature version
// and the object's hash and size, so that new signatures start afresh.
// Only the engine's verdict is shared (status, names, engine): the type
// and name rules are each gateway's own, applied again on a shared hit.
type Shared interface {
	Get(ctx context.Context, key string) (Verdict, bool)
	Put(key string, v Verdict)
}

// RedisVerdicts is Shared on Redis (or Valkey). A store that is down or
// slow costs a lookup at most Wait and a log line a minute, never a
// verdict: it is a miss, and the object is scanned.
type RedisVerdicts struct {
	client *redis.Client
	Wait   time.Duration // per lookup and write (zero: 100 ms)
	TTL    time.Duration // how long a verdict is kept (zero: a day)
	Log    *zap.Logger

	mu     sync.Mutex
	logged time.Time
}

// NewRedisVerdicts connects (lazily) to the store url names
// (redis://[user:password@]host:port/db, rediss:// for TLS).
func NewRedisVerdicts(url string, log *zap.Logger) (*RedisVerdicts, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, err
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = time.Second, time.Second, time.Second
	opt.MaxRetries = -1 // a miss, not a second wait
	if log == nil {
		log = zap.NewNop()
	}
	return &RedisVerdicts{client: redis.NewClient(opt), Log: log}, nil
}

// sharedVerdict is what is stored of a verdict.
type sharedVerdict struct {
	Status Status   `json:"s"`
	Names  []string `json:"n,omitempty"`
	Engine string   `json:"e,omitempty"`
	At     string   `json:"a,omitempty"`
}

func (r *RedisVerdicts) wait() time.Duration {
	if r.Wait > 0 {
		return r.Wait
	}
	return 100 * time.Millisecond
}

// Get is the stored verdict of key; false on a miss, or a store that did
// not answer in time.
func (r *RedisVerdicts) Get(ctx context.Context, key string) (Verdict, bool) {
	ctx, cancel := context.WithTimeout(ctx, r.wait())
	defer cancel()
	b, err := r.client.Get(ctx, key).Bytes()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			r.failed(err)
		}
		return Verdict{}, false
	}
	var sv sharedVerdict
	if json.Unmarshal(b, &sv) != nil || sv.Status == Suspected {
		return Verdict{}, false
	}
	return Verdict{Status: sv.Status, Names: sv.Names, Engine: sv.Engine, At: sv.At}, true
}

// Put stores a verdict, in the background: the scan that gave it does
// not wait for the store.
func (r *RedisVerdicts) Put(key string, v Verdict) {
	b, err := json.Marshal(sharedVerdict{Status: v.Status, Names: v.Names, Engine: v.Engine, At: v.At})
	if err != nil {
		return
	}
	ttl := r.TTL
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), r.wait())
		defer cancel()
		if err := r.client.Set(ctx, key, b, ttl).Err(); err != nil {
			r.failed(err)
		}
	}()
}

// failed logs a store that does not answer, once a minute.
func (r *RedisVerdicts) failed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.logged) < time.Minute {
		return
	}
	r.logged = time.Now()
	r.Log.Warn("the shared verdict cache (verdict_cache_redis) does not answer: objects are scanned as if it were not there", zap.Error(err))
}

// Close closes the connections to the store.
func (r *RedisVerdicts) Close() error { return r.client.Close() }
