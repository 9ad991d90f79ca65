package engine

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// A file of hash signatures is read in chunks of whole lines, parsed on
// as many goroutines as there are processors, each chunk into a hashFile
// of its own, taken in after the chunks before it (absorb): the order
// read, which decides between two signatures for one hash, is kept. The
// reading (and a container's decompression) goes on meanwhile. A reload,
// which scans wait on when it takes their processors, does all this on
// one goroutine (Reload). ClamAV's
// main database holds millions of these lines: parsed on one goroutine
// they were half of a load (docs/benchmarks.md).

// hashChunk is the bytes of lines parsed together.
const hashChunk = 4 << 20

// errLineTooLong is a line longer than maxSigLine, as bufio.Scanner says
// it for the other files.
var errLineTooLong = errors.New("bufio.Scanner: token too long")

// newHashFile is an empty hashFile with the given id, read and sorted
// on par goroutines.
func newHashFile(id string, par int) *hashFile {
	return &hashFile{id: id, par: max(par, 1), hashes: map[string]*hashSet{}, allowed: map[string]*hashSet{}, sections: map[string]*hashSet{}, imports: map[string]*hashSet{}}
}

// readHashLines reads the hash signature lines of the file called name,
// of extension ext, from r into hf; a bad line is a *LoadError with its
// line number.
func (hf *hashFile) readHashLines(name, ext string, r io.Reader) error {
	type chunk struct {
		seq, line int // its place, and its first line's number
		b         []byte
	}
	workers := hf.par
	chunks := make(chan chunk)
	free := make(chan []byte, workers+1)
	var (
		mu     sync.Mutex
		parts  []*hashFile
		errs   []error
		failed atomic.Bool
		wg     sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for c := range chunks {
				part := newHashFile("", 1)
				err := part.parseHashLines(name, ext, c.b, c.line)
				part.names.clipLast()
				select {
				case free <- c.b[:0]:
				default:
				}
				mu.Lock()
				for len(parts) <= c.seq {
					parts, errs = append(parts, nil), append(errs, nil)
				}
				parts[c.seq], errs[c.seq] = part, err
				mu.Unlock()
				if err != nil {
					failed.Store(true)
				}
			}
		})
	}
	readErr := func() error {
		defer close(chunks)
		var carry []byte
		line := 1
		for seq := 0; !failed.Load(); seq++ {
			var b []byte
			select {
			case b = <-free:
			default:
				b = make([]byte, 0, hashChunk)
			}
			b = append(b, carry...)
			k, err := io.ReadFull(r, b[len(b):cap(b)])
			b = b[:len(b)+k]
			end := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
			if err != nil && !end {
				return &LoadError{File: name, Line: line, Msg: err.Error()}
			}
			if !end {
				i := bytes.LastIndexByte(b, '\n')
				if i < 0 {
					return &LoadError{File: name, Line: line, Msg: errLineTooLong.Error()}
				}
				carry = append(carry[:0], b[i+1:]...)
				b = b[:i+1]
			}
			if len(b) > 0 {
				chunks <- chunk{seq, line, b}
				line += bytes.Count(b, []byte{'\n'})
			}
			if end {
				return nil
			}
		}
		return nil
	}()
	wg.Wait()
	for i, part := range parts {
		if errs[i] != nil {
			return errs[i]
		}
		if part != nil {
			hf.absorb(part)
		}
	}
	return readErr
}

// parseHashLines reads lines, the first numbered line, into hf.
func (hf *hashFile) parseHashLines(name, ext string, lines []byte, line int) error {
	for n := line; len(lines) > 0; n++ {
		raw, rest, _ := bytes.Cut(lines, []byte{'\n'})
		lines = rest
		if len(raw) > maxSigLine {
			return &LoadError{File: name, Line: n, Msg: errLineTooLong.Error()}
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || raw[0] == '#' {
			continue
		}
		if err := hf.addLine(ext, raw); err != nil {
			return &LoadError{File: name, Line: n, Msg: err.Error()}
		}
	}
	return nil
}
