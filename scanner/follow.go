package scanner

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Follower is an engine that can search an object while it is still
// being spooled (the bundled fsavd: FOLLOWFD), so that the scan at its end
// has little left to read: a large download costs about the longer of
// its transfer and its scan, not their sum.
type Follower interface {
	// Follow starts following file, nil when the engine cannot now (it
	// does not follow, no connection): the object is then scanned as
	// any other.
	Follow(ctx context.Context, file *os.File) *Following
}

// Following is an object an engine follows as it is spooled. It holds
// one engine connection until the object's Scan (Object.Follow) or
// Close; the caller must Close it in any case.
type Following struct {
	f    *Fsavd
	c    *Conn
	told int64     // the size the engine was last told
	at   time.Time // when
}

// Following tells the engine the size of the file at least every
// followStep bytes, or followEvery when it grew at all, so that a slow
// download does not leave the session silent past the engine's idle
// timeout (fsavd's: 5 minutes).
const (
	followStep  = 4 << 20
	followEvery = 30 * time.Second
)

// Follow starts following file on a connection of its own (one that
// takes FOLLOWFD).
func (f *Fsavd) Follow(ctx context.Context, file *os.File) *Following {
	if strings.ContainsAny(file.Name(), "\n\t") {
		return nil
	}
	c, err := f.Pool.get(ctx)
	if err != nil {
		return nil
	}
	if !c.Follow {
		f.Pool.put(c)
		return nil
	}
	c.SetWriteDeadline(time.Now().Add(f.Pool.timeout()))
	uc, ok := c.Conn.(*net.UnixConn)
	if !ok || sendWithFile(uc, "FOLLOWFD\t"+file.Name()+"\n", file) != nil {
		c.Close()
		return nil
	}
	return &Following{f: f, c: c, at: time.Now()}
}

// Grew says the file is now size bytes long: the engine is told when it
// grew by followStep, or followEvery passed. It never waits for the
// engine; a connection that fails is given up (the scan is then made
// afresh).
func (fw *Following) Grew(size int64) {
	if fw == nil || fw.c == nil || size-fw.told < followStep && (size == fw.told || time.Since(fw.at) < followEvery) {
		return
	}
	fw.told, fw.at = size, time.Now()
	fw.c.SetWriteDeadline(fw.at.Add(fw.f.Pool.timeout()))
	if _, err := fw.c.Write([]byte("GROWN\t" + strconv.FormatInt(size, 10) + "\n")); err != nil {
		fw.Close()
	}
}

// Close gives the follow up, if Scan did not end it: the connection goes
// (the engine drops what it searched).
func (fw *Following) Close() {
	if fw != nil && fw.c != nil {
		fw.c.Close()
		fw.c = nil
	}
}

// finish scans the followed object on its connection (SCANFOLLOWED),
// which then goes back to the pool; ok is false when the follow was
// given up or the exchange failed.
func (fw *Following) finish(ctx context.Context, obj *Object) (v Verdict, ok bool) {
	c := fw.c
	if c == nil {
		return v, false
	}
	fw.c = nil
	err := fw.f.Pool.on(ctx, c, func(c *Conn) (bool, error) {
		return fw.f.exchange(c, obj, &v, func() error {
			_, err := c.Write([]byte("SCANFOLLOWED\n"))
			return err
		})
	})
	return v, err == nil
}
