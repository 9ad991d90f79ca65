package scanner

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/conf"
)

// FromConfig builds the anti-virus scanner the settings name, in its
// verdict cache when verdict_cache is on and the engine tells its version.
func FromConfig(g conf.Global, log *zap.Logger) (Scanner, error) {
	s, err := EngineFromConfig(g, log)
	if err != nil {
		return nil, err
	}
	if _, ok := s.(Versioner); ok && g.VerdictCache > 0 {
		c := NewCache(s, g.VerdictCache)
		if g.VerdictCacheRedis != "" {
			shared, err := NewRedisVerdicts(g.VerdictCacheRedis, log)
			if err != nil {
				return nil, fmt.Errorf("verdict_cache_redis: %w", err)
			}
			c.Shared = shared
		}
		return c, nil
	}
	return s, nil
}

// EngineFromConfig builds the anti-virus engine's client, uncached.
func EngineFromConfig(g conf.Global, log *zap.Logger) (Scanner, error) {
	eps, err := ParseEndpoints(g.AVServers, g.BaseDir)
	if err != nil {
		return nil, err
	}
	p := &Pool{Endpoints: eps, Timeout: g.AVTimeout, MaxIdle: g.AVPool, Log: log, Failover: g.AVBalance == "failover"}
	switch g.AVEngine {
	case "clamd":
		return NewClamd(p, g.AVInstream), nil
	case "icap":
		return NewICAP(p, g.AVICAPService), nil
	}
	return NewFsavd(p, true), nil
}

// SpamFromConfig builds the anti-spam checker the settings name.
func SpamFromConfig(g conf.Global, log *zap.Logger) (SpamChecker, error) {
	eps, err := ParseEndpoints(g.ASServers, g.BaseDir)
	if err != nil {
		return nil, err
	}
	p := &Pool{Endpoints: eps, Timeout: g.ASTimeout, MaxIdle: g.AVPool, Log: log}
	if g.ASEngine == "rspamd" {
		return NewRspamd(p), nil
	}
	return NewSpamd(p), nil
}
