package spool

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/zeebo/blake3"

	"github.com/fsigkd/fsigkd/catalog"
)

func TestFillStopsPastTheLimitAndRemove(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	f, err := d.Create("http")
	if err != nil {
		t.Fatal(err)
	}
	ticks := 0
	if over, err := f.Fill(strings.NewReader("0123456789"), 10, func() { ticks++ }); over || err != nil || f.Size() != 10 || ticks == 0 {
		t.Fatalf("exactly the limit: over %v, %v, %d bytes, %d ticks", over, err, f.Size(), ticks)
	}
	g, _ := d.Create("http")
	src := strings.NewReader(strings.Repeat("x", 3*fillChunk))
	over, err := g.Fill(src, fillChunk+1, nil)
	if !over || err != nil {
		t.Fatalf("past the limit: over %v, %v", over, err)
	}
	// Nothing is lost: the file and what is left of the reader are the whole.
	if g.Size()+int64(src.Len()) != 3*fillChunk || g.Size() > fillChunk+1+fillChunk {
		t.Fatalf("file %d + rest %d", g.Size(), src.Len())
	}
	g.Close()
	path := f.Path()
	if !strings.HasPrefix(filepath.Base(path), "fsigkd-http-") {
		t.Fatalf("name %s", path)
	}
	f.Close()
	f.Close()
	if st, err := os.Stat(path); err != nil || st.Size() != 0 {
		t.Fatalf("a closed file is kept empty for reuse: %v", err)
	}
	if n := d.Drain(); n != 2 {
		t.Fatalf("drained %d files, want 2 (one given back twice counts once)", n)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("spool file left behind")
	}
}

// TestFilesAreReused: a closed file comes back empty for the next object
// of the service, under the same name; one another program removed while
// kept is not reused; one removed while in use is still M14.
func TestFilesAreReused(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	defer d.Drain()
	f, _ := d.Create("pop")
	f.Write([]byte("a longer first object"))
	path := f.Path()
	f.Close()
	g, _ := d.Create("pop")
	if g.Path() != path || g.Size() != 0 {
		t.Fatalf("not reused: %s, %d bytes", g.Path(), g.Size())
	}
	g.Write([]byte("short"))
	if b, _ := os.ReadFile(path); string(b) != "short" {
		t.Fatalf("the reused file holds %q", b)
	}
	buf := make([]byte, 16)
	if n, _ := g.OS().ReadAt(buf, 0); string(buf[:n]) != "short" {
		t.Fatalf("read back %q", buf[:n])
	}
	if h, _ := d.Create("ftp"); h.Path() == path {
		t.Fatal("another service got the file")
	} else {
		h.Close()
	}
	g.Close()
	os.Remove(path) // a temp cleaner
	h, _ := d.Create("pop")
	if h.Path() == path {
		t.Fatal("a removed file was reused")
	}
	os.Remove(h.Path())
	if err := h.Check(); err == nil {
		t.Fatal("a file removed in use was not seen (M14)")
	}
	h.Close()
}

// TestRenamedFileIsNotReused: a kept file renamed away still has its
// link, but not its name; it is not handed out again, and dropping it
// neither removes what now stands under the name nor the moved file.
func TestRenamedFileIsNotReused(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	defer d.Drain()
	f, _ := d.Create("http")
	path := f.Path()
	f.Close()
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("another program's"), 0o600)
	g, err := d.Create("http")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Path() == path {
		t.Fatal("a renamed file was handed out again under its old name")
	}
	if err := g.Check(); err != nil {
		t.Fatalf("the new file: %v", err)
	}
	if b, err := os.ReadFile(path); string(b) != "another program's" {
		t.Fatalf("the file now under the old name was touched: %q, %v", b, err)
	}
	if _, err := os.Stat(moved); err != nil {
		t.Fatalf("the moved file was removed: %v", err)
	}
}

func TestClearStaleRemovesOnlyOurs(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "fsigkd-smtp-123"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(dir, "other"), []byte("x"), 0o600)
	n, err := Dir{Path: dir}.ClearStale()
	if err != nil || n != 1 {
		t.Fatalf("cleared %d, %v", n, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "other")); err != nil {
		t.Fatal("removed a file that is not ours")
	}
}

// TestFileRemovedByAnotherProgram: M14, and the error says so.
func TestFileRemovedByAnotherProgram(t *testing.T) {
	f, err := Dir{Path: t.TempDir()}.Create("ftp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Check(); err != nil {
		t.Fatal(err)
	}
	os.Remove(f.Path())
	err = f.Check()
	m, ok := catalog.Of(err)
	if !ok {
		t.Fatalf("error %v carries no message", err)
	}
	if want := "open=No such file or directory(2) " + f.Path(); m.Text != want || m.ID != "M14" {
		t.Fatalf("got %s %q, want %q", m.ID, m.Text, want)
	}
}

func TestSendToDeliversWholeFile(t *testing.T) {
	f, _ := Dir{Path: t.TempDir()}.Create("http")
	defer f.Close()
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	f.Write(data)
	c, got := receiver(t)
	n, err := f.SendTo(c, 0, f.Size(), 5*time.Second, "u")
	c.Close()
	if err != nil || n != int64(len(data)) {
		t.Fatalf("sent %d, %v", n, err)
	}
	if !bytes.Equal(<-got, data) {
		t.Fatal("receiver got other bytes")
	}
}

// TestSendAfterDeliversHeadAndFile: the head and then every byte of the
// file, whether the file goes in the head's write (up to InlineSize) or
// by sendfile after it; an empty file sends the head alone.
func TestSendAfterDeliversHeadAndFile(t *testing.T) {
	for _, size := range []int{0, 1000, InlineSize, InlineSize + 1, 3 << 20} {
		f, _ := Dir{Path: t.TempDir()}.Create("http")
		data := make([]byte, size)
		rand.Read(data)
		f.Write(data)
		c, got := receiver(t)
		head := []byte("HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(size) + "\r\n\r\n")
		n, err := f.SendAfter(c, head, 5*time.Second, "u")
		c.Close()
		if err != nil || n != int64(size) {
			t.Fatalf("%d bytes: sent %d, %v", size, n, err)
		}
		if b := <-got; !bytes.Equal(b, append(head, data...)) {
			t.Fatalf("%d bytes: the receiver got %d other bytes", size, len(b))
		}
		f.Close()
	}
}

// TestSmallObjectSentFromItsCopy: an object of at most InlineSize bytes,
// written in pieces, is sent from the copy kept as it was written (the
// file is not read back: its reader is closed here); one that grows past
// InlineSize in pieces is read back from the file; a file reused for a
// smaller object sends that one alone.
func TestSmallObjectSentFromItsCopy(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	defer d.Drain()
	send := func(f *File, head string) []byte {
		c, got := receiver(t)
		if _, err := f.SendAfter(c, []byte(head), 5*time.Second, "u"); err != nil {
			t.Fatal(err)
		}
		c.Close()
		return <-got
	}
	data := make([]byte, InlineSize+100)
	rand.Read(data)
	f, _ := d.Create("http")
	f.Write(data[:10])
	f.Fill(bytes.NewReader(data[10:InlineSize]), 0, nil)
	rd := f.rd
	f.rd = nil // any reading back would fail
	if b := send(f, "H:"); !bytes.Equal(b, append([]byte("H:"), data[:InlineSize]...)) {
		t.Fatalf("sent %d other bytes", len(b))
	}
	f.rd = rd
	f.Write(data[InlineSize:])
	if f.small != nil {
		t.Fatal("a copy kept past InlineSize")
	}
	if b := send(f, "H:"); !bytes.Equal(b, append([]byte("H:"), data...)) {
		t.Fatalf("past InlineSize: sent %d other bytes", len(b))
	}
	f.Close()
	g, _ := d.Create("http")
	g.Write([]byte("short"))
	if b := send(g, ""); string(b) != "short" {
		t.Fatalf("the reused file sent %q", b)
	}
	g.Close()
}

// receiver is a connection to a receiver that reads all it is sent, and
// gives it once the connection is closed.
func receiver(t *testing.T) (net.Conn, <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(c)
		got <- b
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return c, got
}

// TestReceiverThatTakesNothingIsDropped: a receiver that never reads
// stalls the send; after the timeout the error carries M07.
func TestReceiverThatTakesNothingIsDropped(t *testing.T) {
	f, _ := Dir{Path: t.TempDir()}.Create("http")
	defer f.Close()
	f.Write(make([]byte, 16<<20))
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	hold := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		hold <- c // accepted, never read
	}()
	c, _ := net.Dial("tcp", ln.Addr().String())
	defer c.Close()
	defer func() { (<-hold).Close() }()
	written, err := f.SendTo(c, 0, f.Size(), time.Second, "http://example.com/big.iso")
	var st *Stalled
	if !errors.As(err, &st) {
		t.Fatalf("err %v, want a stall", err)
	}
	if written == 0 || written >= f.Size() || st.Written != written {
		t.Fatalf("written %d of %d", written, f.Size())
	}
	m, _ := catalog.Of(err)
	shape := regexp.MustCompile(`^sendfile timeout: No data can be sent for 1 seconds\. There may be a temporary network problem between receiver\. / URL=\[http://example\.com/big\.iso\], n=0, written=(\d+), filelen=16777216, writesize=(\d+)$`)
	if m.ID != "M07" || !shape.MatchString(m.Text) {
		t.Fatalf("%s %q", m.ID, m.Text)
	}
}

// TestSumIsOfThisObjectOnly: the running hash of a file is its
// content's, and a reused file's sum carries nothing of the object before.
func TestSumIsOfThisObjectOnly(t *testing.T) {
	d := Dir{Path: t.TempDir(), Hash: true}
	first, second := bytes.Repeat([]byte("first object "), 1000), []byte("second")
	f, err := d.Create("http")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Fill(bytes.NewReader(first), 0, nil); err != nil {
		t.Fatal(err)
	}
	if sum, ok := f.Sum(); !ok || sum != blake3.Sum256(first) {
		t.Fatalf("sum of the first object: %x %v", sum, ok)
	}
	path := f.Path()
	f.Close()
	g, err := d.Create("http")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.Path() != path {
		t.Fatalf("the file was not reused: %s, then %s", path, g.Path())
	}
	g.Write(second[:3])
	g.Write(second[3:])
	if sum, ok := g.Sum(); !ok || sum != blake3.Sum256(second) {
		t.Fatalf("sum of the second object in a reused file: %x", sum)
	}
	if _, ok := (Dir{Path: t.TempDir()}).sumOf(t); ok {
		t.Fatal("a directory without Hash gave a sum")
	}
}

func (d Dir) sumOf(t *testing.T) ([32]byte, bool) {
	f, err := d.Create("smtp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write([]byte("x"))
	return f.Sum()
}

// byteByByteOver reads data in one piece up to 100 bytes before border,
// then a byte at a time to 100 bytes past it, then the rest at once.
func byteByByteOver(data []byte, border int) io.Reader {
	from, to := min(len(data), border-100), min(len(data), border+100)
	return io.MultiReader(bytes.NewReader(data[:from]), iotest.OneByteReader(bytes.NewReader(data[from:to])), bytes.NewReader(data[to:]))
}

// segmentedSum is the sum as digest defines it, computed plainly.
func segmentedSum(data []byte) [32]byte {
	if len(data) <= segmentSize {
		return blake3.Sum256(data)
	}
	outer := blake3.New()
	outer.WriteString(sumDomain)
	for len(data) > 0 {
		seg := data[:min(segmentSize, len(data))]
		data = data[len(seg):]
		s := blake3.Sum256(seg)
		outer.Write(s[:])
	}
	var out [32]byte
	outer.Sum(out[:0])
	return out
}

// TestSumOfALargeObject: an object of many segments, its head hashed as
// it is spooled and the rest read back (the first segment's in line, the
// others on several goroutines), or hashed as it comes, has the sum of
// its bytes, however the reader cuts them, the same as when written in
// line by Write; a file reused after it sums its next object alone; one
// segment and one byte more is not the sum of the segment. Objects
// exactly one head, one and two segments long are the edges.
func TestSumOfALargeObject(t *testing.T) {
	all := make([]byte, 5*segmentSize+12345)
	rand.Read(all)
	// Read back, and hashed as it comes (SumAhead says yes).
	sumOfALargeObject(t, Dir{Path: t.TempDir(), Hash: true}, all)
	sumOfALargeObject(t, Dir{Path: t.TempDir(), Hash: true, SumAhead: func([32]byte) bool { return true }}, all)
}

func sumOfALargeObject(t *testing.T, d Dir, all []byte) {
	for _, size := range []int{headSize, headSize + 1, 1 << 20, segmentSize, segmentSize + 1, 2 * segmentSize, len(all)} {
		data := all[:size]
		for name, r := range map[string]func() io.Reader{
			"whole chunks":                       func() io.Reader { return bytes.NewReader(data) },
			"odd pieces":                         func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
			"byte by byte over the head's end":   func() io.Reader { return byteByByteOver(data, headSize) },
			"byte by byte over the first border": func() io.Reader { return byteByByteOver(data, segmentSize) },
		} {
			f, err := d.Create("http")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Fill(r(), 0, nil); err != nil {
				t.Fatal(err)
			}
			want := segmentedSum(data[:f.Size()])
			if f.SumReadsBack() != (size > headSize && d.SumAhead == nil) {
				t.Fatalf("%d bytes: SumReadsBack says %v", size, f.SumReadsBack())
			}
			if sum, _ := f.Sum(); sum != want {
				t.Fatalf("%d bytes, %s: sum %x, want %x", size, name, sum, want)
			}
			if f.SumReadsBack() {
				t.Fatalf("%d bytes: the sum is read back again", size)
			}
			got, _ := io.ReadAll(io.NewSectionReader(f.OS(), 0, f.Size()))
			if !bytes.Equal(got, data[:f.Size()]) {
				t.Fatalf("%d bytes, %s: the spooled bytes differ", size, name)
			}
			f.Close()
		}
		// Written in line, in uneven writes: the same sum.
		f, err := d.Create("smtp")
		if err != nil {
			t.Fatal(err)
		}
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 99991)
			f.Write(rest[:n])
			rest = rest[n:]
		}
		if sum, _ := f.Sum(); sum != segmentedSum(data) {
			t.Fatalf("%d bytes written in line: %x", size, sum)
		}
		f.Close()
	}
	if segmentedSum(all[:segmentSize+1]) == blake3.Sum256(all[:segmentSize+1]) {
		t.Fatal("past one segment, the sum is the plain hash")
	}
	f, err := d.Create("http")
	if err != nil {
		t.Fatal(err)
	}
	f.Fill(bytes.NewReader([]byte("small")), 0, nil)
	if sum, _ := f.Sum(); sum != blake3.Sum256([]byte("small")) {
		t.Fatal("a file reused after a large object: the sum carries it")
	}
	f.Close()
}

// TestSumOfALargeObjectCutShort: a Fill that stops past its limit, or on
// the reader's error, leaves the sum of every byte it wrote, no more and
// no less.
func TestSumOfALargeObjectCutShort(t *testing.T) {
	d := Dir{Path: t.TempDir(), Hash: true}
	data := make([]byte, 3*segmentSize)
	rand.Read(data)
	broken := errors.New("connection reset")
	for name, c := range map[string]struct {
		r    io.Reader
		max  int64
		over bool
		err  error
	}{
		"over the limit": {bytes.NewReader(data), 2 * segmentSize, true, nil},
		"reader error":   {io.MultiReader(bytes.NewReader(data[:segmentSize+1<<20+7]), iotest.ErrReader(broken)), 0, false, broken},
	} {
		f, err := d.Create("http")
		if err != nil {
			t.Fatal(err)
		}
		over, err := f.Fill(c.r, c.max, nil)
		if over != c.over || !errors.Is(err, c.err) {
			t.Fatalf("%s: over %v, err %v", name, over, err)
		}
		if sum, _ := f.Sum(); sum != segmentedSum(data[:f.Size()]) {
			t.Fatalf("%s: the sum is not of the %d bytes written", name, f.Size())
		}
		f.Close()
	}
}

// TestSumOfAFileCutByAnotherProgram: a large object whose file another
// program shortened (a temp cleaner, an administrator) has no sum, rather
// than the sum of what is left: the verdict cache must not keep a verdict
// under a key that is not the object's. One written again after is
// summed whole.
func TestSumOfAFileCutByAnotherProgram(t *testing.T) {
	d := Dir{Path: t.TempDir(), Hash: true}
	data := make([]byte, 3*segmentSize)
	rand.Read(data)
	f, err := d.Create("http")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Fill(bytes.NewReader(data), 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f.Path(), 2*segmentSize+5); err != nil {
		t.Fatal(err)
	}
	if sum, ok := f.Sum(); ok {
		t.Fatalf("a cut file has a sum: %x", sum)
	}
	f.f.WriteAt(data[2*segmentSize+5:], 2*segmentSize+5)
	if sum, ok := f.Sum(); !ok || sum != segmentedSum(data) {
		t.Fatalf("written again whole: %x %v", sum, ok)
	}
}

// TestSumAheadIsAskedOnce: SumAhead is asked once an object passes its
// first 64 KiB, with their hash (HeadSum's), however the reader cuts
// them; never for an object no longer. What it says decides whether the
// sum must be read back.
func TestSumAheadIsAskedOnce(t *testing.T) {
	data := make([]byte, 3*segmentSize)
	rand.Read(data)
	want := blake3.Sum256(data[:headSize])
	for _, yes := range []bool{false, true} {
		var asked [][32]byte
		d := Dir{Path: t.TempDir(), Hash: true, SumAhead: func(head [32]byte) bool { asked = append(asked, head); return yes }}
		for _, r := range []io.Reader{bytes.NewReader(data[:headSize]), bytes.NewReader(data[:headSize+1]), bytes.NewReader(data[:segmentSize]),
			bytes.NewReader(data), iotest.HalfReader(bytes.NewReader(data)), byteByByteOver(data[:1<<20], headSize)} {
			asked = nil
			f, err := d.Create("http")
			if err != nil {
				t.Fatal(err)
			}
			f.Fill(r, 0, nil)
			large := f.Size() > headSize
			if large && (len(asked) != 1 || asked[0] != want) || !large && len(asked) != 0 {
				t.Fatalf("%d bytes: asked %d times", f.Size(), len(asked))
			}
			if head, ok := f.HeadSum(); ok != large || large && head != want {
				t.Fatalf("%d bytes: HeadSum %x, %v", f.Size(), head, ok)
			}
			if large && f.SumReadsBack() == yes {
				t.Fatalf("SumAhead said %v, SumReadsBack %v", yes, f.SumReadsBack())
			}
			if sum, ok := f.Sum(); !ok || sum != segmentedSum(data[:f.Size()]) {
				t.Fatalf("%d bytes, ahead %v: wrong sum", f.Size(), yes)
			}
			f.Close()
		}
	}
}

// TestSmallObjectStaysInMemory: an object of at most InlineSize bytes is
// held in memory (no file made, a kept one left untouched), read there
// (Memory, ReadAt), and written to its file only once the file is asked
// for (OS) or it grows past InlineSize; with the directory gone, a small
// object is still served (SendTo sends it from memory) and a larger one
// fails with a *Failure.
func TestSmallObjectStaysInMemory(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	defer d.Drain()
	files := func() []string { m, _ := filepath.Glob(filepath.Join(d.Path, "fsigkd-*")); return m }
	f, _ := d.Create("http")
	f.Write([]byte("a small "))
	f.Fill(strings.NewReader("object"), 0, nil)
	if len(files()) != 0 {
		t.Fatalf("a small object made %v", files())
	}
	if m, ok := f.Memory(); !ok || string(m) != "a small object" {
		t.Fatalf("in memory: %q %v", m, ok)
	}
	b := make([]byte, 6)
	if n, err := f.ReadAt(b, 8); n != 6 || err != nil || string(b) != "object" {
		t.Fatalf("ReadAt: %q %d %v", b, n, err)
	}
	if n, err := f.ReadAt(b, 10); n != 4 || err != io.EOF {
		t.Fatalf("ReadAt past the end: %d %v", n, err)
	}
	if b, _ := io.ReadAll(io.NewSectionReader(f.OS(), 0, f.Size())); string(b) != "a small object" {
		t.Fatalf("its file once asked for holds %q", b)
	}
	if _, ok := f.Memory(); ok || len(files()) != 1 {
		t.Fatalf("not written to its file: %v", files())
	}
	f.Close()
	kept := files()[0]
	before, _ := os.Stat(kept)
	time.Sleep(20 * time.Millisecond)
	g, _ := d.Create("http")
	g.Write([]byte("another small one"))
	g.Close()
	if after, _ := os.Stat(kept); after.Size() != 0 || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("the kept file was touched by a small object: %d bytes, %v", after.Size(), after.ModTime())
	}
	h, _ := d.Create("http")
	big := bytes.Repeat([]byte("x"), InlineSize+1)
	h.Write(big[:InlineSize])
	h.Write(big[InlineSize:])
	if b, _ := os.ReadFile(kept); !bytes.Equal(b, big) {
		t.Fatalf("past InlineSize: the file holds %d bytes", len(b))
	}
	h.Close()

	gone := Dir{Path: filepath.Join(t.TempDir(), "gone")}
	s, err := gone.Create("pop")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("fits in memory")); err != nil {
		t.Fatalf("a small object with no directory: %v", err)
	}
	c, got := receiver(t)
	if n, err := s.SendTo(c, 5, 2, 5*time.Second, "u"); n != 2 || err != nil {
		t.Fatalf("a part of it sent: %d %v", n, err)
	}
	c.Close()
	if b := <-got; string(b) != "in" {
		t.Fatalf("sent %q", b)
	}
	var fail *Failure
	if _, err := s.Write(big); !errors.As(err, &fail) {
		t.Fatalf("past InlineSize with no directory: %v", err)
	}
	s.Close()
}
