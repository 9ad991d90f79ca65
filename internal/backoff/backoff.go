// Package backoff is the wait after a failure that may pass (an accept that
// met EMFILE, say): 5 ms, doubling, capped, so that a loop that retries
// never spins and never waits long once the failure has passed.
package backoff

import "time"

// First is the first wait.
const First = 5 * time.Millisecond

// Next is the wait after d (0 for none yet), capped by limit (0: a second).
func Next(d, limit time.Duration) time.Duration {
	if limit <= 0 {
		limit = time.Second
	}
	if d == 0 {
		return min(First, limit)
	}
	return min(2*d, limit)
}
