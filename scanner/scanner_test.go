package scanner

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/fsavd"
	"github.com/fsigkd/fsigkd/fsavd/engine"
	"github.com/fsigkd/fsigkd/internal/enginetest"
	"github.com/fsigkd/fsigkd/internal/testenv"
)

// object spools data into a file for a scan.
func object(t testing.TB, data []byte) *Object {
	t.Helper()
	f := testenv.OpenFile(t, "obj", data)
	return &Object{File: f, Path: f.Name(), Size: int64(len(data)), Meta: Meta{Service: "http", URL: "http://example.com/x"}}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

func TestFsavdVerdicts(t *testing.T) {
	dir := testenv.ShortDir(t)
	sock := filepath.Join(dir, "fsavd-socket-0")
	enginetest.FsavdAt(t, sock, nil)
	eps, _ := ParseEndpoints("./fsavd-socket-0", dir)
	f := NewFsavd(&Pool{Endpoints: eps}, false)
	v, err := f.Scan(ctx(t), object(t, []byte(eicar.String)))
	if err != nil || v.Status != Infected || v.Name() != "Eicar-Test-Signature" {
		t.Fatalf("EICAR: %+v %v", v, err)
	}
	for i := 0; i < 3; i++ { // on the same pooled connection
		v, err = f.Scan(ctx(t), object(t, []byte("nothing to see")))
		if err != nil || v.Status != Clean {
			t.Fatalf("clean: %+v %v", v, err)
		}
	}
	v, err = f.Scan(ctx(t), object(t, []byte("From: a@b\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\nWDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo=\n")))
	if err != nil || v.Status != Infected {
		t.Fatalf("EICAR in base64 mail: %+v %v", v, err)
	}
}

// TestFsavdEngineWithoutSignatures: an engine that greets with ERROR
// (signatures not loaded) is M16.
func TestFsavdEngineWithoutSignatures(t *testing.T) {
	dir := testenv.ShortDir(t)
	sock := filepath.Join(dir, "fsavd-socket-0")
	enginetest.FsavdAt(t, sock, errors.New("bad.ndb:2: bad hex"))
	eps, _ := ParseEndpoints(sock, "")
	_, err := NewFsavd(&Pool{Endpoints: eps}, false).Scan(ctx(t), object(t, []byte("x")))
	var se *Error
	if !errors.As(err, &se) || se.Kind != Broken || se.CatalogMessage().Text != "vsc_start() error" {
		t.Fatalf("error %v", err)
	}
}

// TestFsavdSocketGone: M25 once, a fast failure while down, and recovery
// as soon as the engine is back.
func TestFsavdSocketGone(t *testing.T) {
	dir := testenv.ShortDir(t)
	eps, _ := ParseEndpoints("./fsavd-socket-0", dir)
	log, logs := observed()
	f := NewFsavd(&Pool{Endpoints: eps, Log: log, RetryMin: 50 * time.Millisecond}, false)
	want := "fsav_open_session: Cannot connect to fsavd's socket(./fsavd-socket-0). fsavd may be not running. Please run 'rc.fsigk_fsavd restart' to restart fsavd."
	for i := 0; i < 5; i++ {
		_, err := f.Scan(ctx(t), object(t, []byte("x")))
		if KindOf(err) != Down {
			t.Fatalf("scan %d: %v", i, err)
		}
		if m, _ := errorMsg(err); m != want {
			t.Fatalf("message %q", m)
		}
	}
	if n := len(logs.FilterMessage(want).All()); n != 1 {
		t.Fatalf("M25 logged %d times for one outage", n)
	}
	enginetest.FsavdAt(t, filepath.Join(dir, "fsavd-socket-0"), nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := f.Scan(ctx(t), object(t, []byte(eicar.String)))
		if err == nil && v.Status == Infected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not recovered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(logs.FilterMessage("engine answers again").All()) == 0 {
		t.Error("recovery not logged")
	}
}

func errorMsg(err error) (string, bool) {
	var se *Error
	if errors.As(err, &se) && se.Msg != nil {
		return se.Msg.Text, true
	}
	return "", false
}

// TestFailoverToTheNextEndpoint: the first endpoint is dead, the second
// answers.
func TestFailoverToTheNextEndpoint(t *testing.T) {
	dir := testenv.ShortDir(t)
	enginetest.FsavdAt(t, filepath.Join(dir, "b"), nil)
	eps, _ := ParseEndpoints("./a,./b", dir)
	f := NewFsavd(&Pool{Endpoints: eps}, false)
	for i := 0; i < 4; i++ {
		v, err := f.Scan(ctx(t), object(t, []byte(eicar.String)))
		if err != nil || v.Status != Infected || !strings.HasSuffix(v.Engine, "./b") {
			t.Fatalf("scan %d: %+v %v", i, v, err)
		}
	}
}

// TestEngineThatHangs: an engine that takes a connection and never answers
// costs the request's deadline, and the error says Timeout.
func TestEngineThatHangs(t *testing.T) {
	clamd := enginetest.Clamd(t, "")
	eps, _ := ParseEndpoints(clamd.Sock, "")
	cl := NewClamd(&Pool{Endpoints: eps}, false)
	if err := cl.Ping(ctx(t)); err != nil {
		t.Fatal(err)
	}
	clamd.Freeze()
	defer clamd.Thaw()
	c, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := cl.Scan(c, object(t, []byte(eicar.String)))
	if KindOf(err) != Timeout {
		t.Fatalf("error %v, want a timeout", err)
	}
}

func TestClamdFildesAndInstream(t *testing.T) {
	clamd := enginetest.Clamd(t, "1M")
	for _, tc := range []struct {
		name     string
		endpoint string
		instream bool
	}{
		{"fildes over unix", clamd.Sock, false},
		{"instream over unix", clamd.Sock, true},
		{"instream over tcp", clamd.Addr, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eps, _ := ParseEndpoints(tc.endpoint, "")
			cl := NewClamd(&Pool{Endpoints: eps}, tc.instream)
			if err := cl.Ping(ctx(t)); err != nil {
				t.Fatal(err)
			}
			v, err := cl.Scan(ctx(t), object(t, []byte(eicar.String)))
			if err != nil || v.Status != Infected || v.Name() != "Eicar-Test-Signature.UNOFFICIAL" {
				t.Fatalf("EICAR: %+v %v", v, err)
			}
			v, err = cl.Scan(ctx(t), object(t, []byte("x "+enginetest.TestString+" y")))
			if err != nil || v.Name() != enginetest.TestName+".UNOFFICIAL" {
				t.Fatalf("test signature: %+v %v", v, err)
			}
			v, err = cl.Scan(ctx(t), object(t, make([]byte, 300<<10)))
			if err != nil || v.Status != Clean {
				t.Fatalf("clean: %+v %v", v, err)
			}
			// Held in memory: sent as one INSTREAM chunk, never a file.
			for name, c := range map[string]struct {
				data []byte
				want Status
			}{"eicar": {[]byte(eicar.String), Infected}, "clean": {[]byte("nothing"), Clean}, "empty": {nil, Clean}} {
				if v, err := cl.Scan(ctx(t), inMemory(t, append([]byte{}, c.data...))); err != nil || v.Status != c.want {
					t.Fatalf("%s held in memory: %+v %v", name, v, err)
				}
			}
		})
	}
	t.Run("instream over the limit", func(t *testing.T) {
		eps, _ := ParseEndpoints(clamd.Sock, "")
		_, err := NewClamd(&Pool{Endpoints: eps}, true).Scan(ctx(t), object(t, make([]byte, 3<<20)))
		if KindOf(err) != Refused || !strings.Contains(err.Error(), "size limit exceeded") {
			t.Fatalf("error %v", err)
		}
	})
}

// TestClamdKilledAndRestarted: scans fail as Down (never clean) while
// clamd is gone, and work again once it is back.
func TestClamdKilledAndRestarted(t *testing.T) {
	clamd := enginetest.Clamd(t, "")
	eps, _ := ParseEndpoints(clamd.Sock, "")
	cl := NewClamd(&Pool{Endpoints: eps, RetryMin: 50 * time.Millisecond}, false)
	clamd.Stop()
	v, err := cl.Scan(ctx(t), object(t, []byte(eicar.String)))
	if KindOf(err) != Down || len(v.Names) != 0 {
		t.Fatalf("with clamd gone: %+v %v", v, err)
	}
	clamd.Restart()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err = cl.Scan(ctx(t), object(t, []byte(eicar.String)))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v.Status != Infected {
		t.Fatalf("after restart: %+v", v)
	}
}

func TestSpamdGTUBE(t *testing.T) {
	spamd := enginetest.Spamd(t)
	eps, _ := ParseEndpoints(spamd.Sock, "")
	s := NewSpamd(&Pool{Endpoints: eps})
	spam := "From: a@example.com\r\nTo: b@example.com\r\nSubject: offer\r\n\r\n" + eicar.GTUBE + "\r\n"
	v, err := s.Check(ctx(t), object(t, []byte(spam)))
	if err != nil || !v.Spam || v.Score < 1000 || !contains(v.Symbols, "GTUBE") || v.Threshold != 5 {
		t.Fatalf("GTUBE: %+v %v", v, err)
	}
	ham := "From: a@example.com\r\nTo: b@example.com\r\nSubject: lunch\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nSee you at noon.\r\n"
	v, err = s.Check(ctx(t), object(t, []byte(ham)))
	if err != nil || v.Spam {
		t.Fatalf("ham: %+v %v", v, err)
	}
	// A mail held in memory is read from there.
	v, err = s.Check(ctx(t), inMemory(t, []byte(spam)))
	if err != nil || !v.Spam || !contains(v.Symbols, "GTUBE") {
		t.Fatalf("GTUBE held in memory: %+v %v", v, err)
	}
}

// inMemory is data as an object the spool holds in memory, which no
// engine is to ask to be written to a file.
func inMemory(t *testing.T, data []byte) *Object {
	return &Object{Data: data, Size: int64(len(data)), Spill: func() (*os.File, string, error) {
		t.Error("an object held in memory was written to a file")
		return nil, "", os.ErrInvalid
	}}
}

func TestSpamdSocketGone(t *testing.T) {
	dir := testenv.ShortDir(t)
	eps, _ := ParseEndpoints("./fsasd-socket", dir)
	_, err := NewSpamd(&Pool{Endpoints: eps}).Check(ctx(t), object(t, []byte("x")))
	if m, _ := errorMsg(err); m != "fsas_open_session(./fsasd-socket) failed." {
		t.Fatalf("error %v", err)
	}
}

func TestICAPWithCICAP(t *testing.T) {
	clamd := enginetest.Clamd(t, "")
	icap := enginetest.CICAP(t, clamd.Sock)
	eps, _ := ParseEndpoints(icap.Addr, "")
	ic := NewICAP(&Pool{Endpoints: eps}, "avscan")
	v, err := ic.Scan(ctx(t), object(t, []byte(eicar.String)))
	if err != nil || v.Status != Infected || !strings.Contains(v.Name(), "Eicar-Test-Signature") {
		t.Fatalf("EICAR: %+v %v", v, err)
	}
	// Text beyond the preview (c-icap's virus_scan skips types it is not
	// told to scan, such as runs of zeros).
	// c-icap withholds such an object without naming the threat.
	big := []byte(strings.Repeat("lorem ipsum dolor sit amet\n", 8000) + eicar.String + "\n")
	v, err = ic.Scan(ctx(t), object(t, big))
	if err != nil || v.Status == Clean {
		t.Fatalf("past the preview: %+v %v", v, err)
	}
	v, err = ic.Scan(ctx(t), object(t, big[:len(big)-70]))
	if err != nil || v.Status != Clean {
		t.Fatalf("clean past the preview: %+v %v", v, err)
	}
	v, err = ic.Scan(ctx(t), object(t, []byte("clean text")))
	if err != nil || v.Status != Clean {
		t.Fatalf("clean: %+v %v", v, err)
	}
	if v, err := ic.Scan(ctx(t), inMemory(t, []byte(eicar.String))); err != nil || v.Status != Infected {
		t.Fatalf("EICAR held in memory: %+v %v", v, err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestRspamdGTUBE(t *testing.T) {
	rs := enginetest.Rspamd(t)
	eps, _ := ParseEndpoints(rs.Addr, "")
	r := NewRspamd(&Pool{Endpoints: eps})
	o := object(t, []byte("From: a@example.com\r\nTo: b@example.com\r\nSubject: x\r\n\r\n"+eicar.GTUBE+"\r\n"))
	o.Meta = Meta{Service: "smtp", Sender: "a@example.com", Recipients: []string{"b@example.com"}, Client: "192.0.2.1", Helo: "client.example"}
	var v SpamVerdict
	var err error
	// The port answers a moment before the worker does.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if v, err = r.Check(ctx(t), o); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !v.Spam || v.Action != "reject" || !contains(v.Symbols, "GTUBE") {
		t.Fatalf("GTUBE: %+v %v", v, err)
	}
	v, err = r.Check(ctx(t), object(t, []byte("From: a@example.com\r\n\r\nhello\r\n")))
	if err != nil || v.Spam {
		t.Fatalf("ham: %+v %v", v, err)
	}
}

// TestClamdKilledMidScan: clamd dies while a large object streams to it;
// the scan fails (never clean).
func TestClamdKilledMidScan(t *testing.T) {
	clamd := enginetest.Clamd(t, "200M")
	eps, _ := ParseEndpoints(clamd.Sock, "")
	cl := NewClamd(&Pool{Endpoints: eps}, true)
	big := object(t, make([]byte, 150<<20))
	done := make(chan error, 1)
	go func() {
		_, err := cl.Scan(ctx(t), big)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	clamd.Stop()
	if err := <-done; err == nil {
		t.Fatal("a scan cut short by the engine's death came back clean")
	}
}

// TestStalePooledConnectionsAfterEngineRestart: the engine restarted while
// the pool held several idle connections to it; the next scan succeeds at
// once (it failed with 451s before: the retry took another stale one).
func TestStalePooledConnectionsAfterEngineRestart(t *testing.T) {
	sock := filepath.Join(testenv.ShortDir(t), "fsavd-socket-0")
	db, _ := engine.Load("")
	start := func() *fsavd.Server {
		srv := &fsavd.Server{Engine: engine.New(db)}
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		return srv
	}
	srv := start()
	eps, _ := ParseEndpoints(sock, "")
	f := NewFsavd(&Pool{Endpoints: eps, MaxIdle: 8}, true)
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); f.Scan(ctx(t), object(t, []byte("clean"))) }()
	}
	wg.Wait()
	c, cancel := context.WithTimeout(context.Background(), time.Second)
	srv.Shutdown(c)
	cancel()
	srv2 := start()
	defer srv2.Shutdown(context.Background())
	for i := 0; i < 3; i++ {
		v, err := f.Scan(ctx(t), object(t, []byte(eicar.String)))
		if err != nil || v.Status != Infected {
			t.Fatalf("scan %d after the engine's restart: %+v %v", i, v, err)
		}
	}
}

// TestFsavdPassesTheDescriptor: the bundled fsavd is given the spooled
// file's descriptor, not its path: a file removed from the spool after it
// was opened is still scanned, and found infected; whether its name
// still names it is not asked (no M14 for what the engine never opens by
// name, and a system call less an object).
func TestFsavdPassesTheDescriptor(t *testing.T) {
	dir := testenv.ShortDir(t)
	enginetest.FsavdAt(t, filepath.Join(dir, "fsavd-socket-0"), nil)
	eps, _ := ParseEndpoints("./fsavd-socket-0", dir)
	f := NewFsavd(&Pool{Endpoints: eps}, false)
	for i := range 3 { // the first connection and the pooled one
		obj := object(t, []byte(eicar.String))
		os.Remove(obj.Path)
		obj.InPlace = func() error { t.Error("asked whether the name holds"); return os.ErrNotExist }
		v, err := f.Scan(ctx(t), obj)
		if err != nil || v.Status != Infected {
			t.Fatalf("scan %d of a removed file by descriptor: %+v %v", i, v, err)
		}
	}
}

// TestFsavdWithoutDescriptors: an fsavd that does not know SCANFD (as
// F-Secure's own) refuses the option, and is given paths.
func TestFsavdWithoutDescriptors(t *testing.T) {
	sock := filepath.Join(testenv.ShortDir(t), "fsavd-socket-0")
	scanned := pathOnlyFsavdAt(t, sock)
	eps, _ := ParseEndpoints(sock, "")
	f := NewFsavd(&Pool{Endpoints: eps}, false)
	obj := object(t, []byte(eicar.String))
	v, err := f.Scan(ctx(t), obj)
	if err != nil || v.Status != Infected {
		t.Fatalf("EICAR by path: %+v %v", v, err)
	}
	// A file no longer under its name is not sent (the engine would not
	// find it): the check's error, M14's, and the connection serves on.
	gone := object(t, []byte(eicar.String))
	gone.InPlace = func() error { return os.ErrNotExist }
	if _, err := f.Scan(ctx(t), gone); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a file gone from its name: %v", err)
	}
	if v, err := f.Scan(ctx(t), obj); err != nil || v.Status != Infected {
		t.Fatalf("EICAR by path after: %+v %v", v, err)
	}
	if scans := scanned(); len(scans) != 2 || scans[0] != "SCAN\t"+obj.Path || scans[1] != scans[0] {
		t.Fatalf("commands %q, want two SCANs of the file in place, by path", scans)
	}
}

// pathOnlyFsavdAt serves pathOnlyFsavd on the Unix socket sock; scanned
// gives the SCAN commands it was sent.
func pathOnlyFsavdAt(t *testing.T, sock string) (scanned func() []string) {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var scans []string
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go pathOnlyFsavd(c, func(cmd string) { mu.Lock(); scans = append(scans, cmd); mu.Unlock() })
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(scans)
	}
}

// pathOnlyFsavd answers as an fsavd that knows only the original
// protocol: unknown options are ERROR, and SCAN reads the path.
func pathOnlyFsavd(c net.Conn, scanned func(string)) {
	defer c.Close()
	c.Write([]byte("DBVERSION\t2026-11-29_01\n"))
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		switch {
		case f[0] == "PROTOCOL":
			c.Write([]byte("OK\tProtocol version 9\n"))
		case f[0] == "CONFIGURE" && len(f) == 3 && strings.Contains("ARCHIVE MIME RISKWARE TIMEOUT", f[1]):
			c.Write([]byte("OK\tOption set\n"))
		case f[0] == "SCAN" && len(f) == 2:
			scanned(strings.TrimSuffix(line, "\n"))
			b, err := os.ReadFile(f[1])
			switch {
			case err != nil:
				c.Write([]byte("SCAN_FAILURE\t" + f[1] + "\t0x1\tcannot open\n"))
			case strings.Contains(string(b), eicar.String):
				c.Write([]byte("INFECTED\t" + f[1] + "\tEICAR_Test_File\tAquarius\t0\t0\t0\t0\n"))
			default:
				c.Write([]byte("CLEAN\t" + f[1] + "\n"))
			}
			c.Write([]byte("OK\tScan ok.\n"))
		case f[0] == "SCAN" || f[0] == "SCANFD":
			scanned(strings.TrimSuffix(line, "\n"))
			c.Write([]byte("ERROR\tUnknown command\n"))
		default:
			c.Write([]byte("ERROR\tUnknown option\n"))
		}
	}
}

// TestFsavdTakesSmallObjectsBytes: an object held in memory (Data) goes
// to the bundled fsavd as its bytes (SCANBYTES): EICAR found, where in a
// zip said, a clean one clean, and its file never asked for (Spill); one
// past what SCANBYTES takes is written to its file first. An fsavd that
// does not take bytes (F-Secure's own) gets the file, by path.
func TestFsavdTakesSmallObjectsBytes(t *testing.T) {
	dir := testenv.ShortDir(t)
	enginetest.FsavdAt(t, filepath.Join(dir, "fsavd-socket-0"), nil)
	eps, _ := ParseEndpoints("./fsavd-socket-0", dir)
	f := NewFsavd(&Pool{Endpoints: eps}, false)
	inMemory := func(data []byte, spilled *bool) *Object {
		return &Object{Data: data, Size: int64(len(data)), Meta: Meta{Service: "http"}, Spill: func() (*os.File, string, error) {
			*spilled = true
			file := testenv.OpenFile(t, "obj", data)
			return file, file.Name(), nil
		}}
	}
	var spilled bool
	for name, c := range map[string]struct {
		data []byte
		want Status
		at   string
	}{
		"eicar":  {[]byte(eicar.String), Infected, ""},
		"zipped": {eicar.Zip(map[string][]byte{"e.com": []byte(eicar.String)}), Infected, "e.com"},
		"clean":  {[]byte("nothing here"), Clean, ""},
		"empty":  {[]byte{}, Clean, ""},
	} {
		v, err := f.Scan(ctx(t), inMemory(c.data, &spilled))
		if err != nil || v.Status != c.want || v.At != c.at {
			t.Errorf("%s: %+v %v", name, v, err)
		}
	}
	if spilled {
		t.Error("an object held in memory was written to a file")
	}
	big := append([]byte(eicar.String), make([]byte, maxInline)...)
	if v, err := f.Scan(ctx(t), inMemory(big, &spilled)); err != nil || v.Status != Infected || !spilled {
		t.Errorf("past SCANBYTES' limit: %+v %v, written to a file: %v", v, err, spilled)
	}

	sock := filepath.Join(dir, "old")
	scanned := pathOnlyFsavdAt(t, sock)
	oldEps, _ := ParseEndpoints(sock, "")
	old := NewFsavd(&Pool{Endpoints: oldEps}, false)
	spilled = false
	obj := inMemory([]byte(eicar.String), &spilled)
	if v, err := old.Scan(ctx(t), obj); err != nil || v.Status != Infected || !spilled {
		t.Fatalf("to an fsavd without SCANBYTES: %+v %v, written to a file: %v", v, err, spilled)
	}
	if scans := scanned(); len(scans) != 1 || scans[0] != "SCAN\t"+obj.Path {
		t.Fatalf("commands %q, want one SCAN by path", scans)
	}
}
