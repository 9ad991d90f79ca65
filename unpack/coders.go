package unpack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/bodgit/sevenzip"
	"github.com/klauspost/compress/zstd"
	"github.com/stangelandcl/ppmd"
	"github.com/ulikunitz/xz/lzma"
)

// 7z's LZMA, LZMA2 and PPMd decoders take the memory their coder's
// properties name, 4 GiB at most, from the archive's header: a 124-byte
// 7z made the engine allocate 1.5 GiB. These are registered in place of
// the library's: a dictionary is made no larger than the folder's
// unpacked size and than coderMemory (no stream the walk decodes reaches
// further back than what one object may unpack); a PPMd model, which must
// be the size its coder had, larger than coderMemory is not made (the
// member is said unopened, suspected, never clean). Its zstd decoder
// (7-Zip's zstd builds) took the window a frame's header names, 512 MiB
// from a few bytes: bounded as a .zst's is (zstdMaxWindow).

// coderMemory is the most memory one coder may take: the largest
// MaxTotal of the limits scans ran with (raiseCoderMemory).
var coderMemory atomic.Int64

func init() {
	coderMemory.Store(defaultMaxTotal)
	sevenzip.RegisterDecompressor([]byte{0x03, 0x01, 0x01}, sevenZipLZMA)
	sevenzip.RegisterDecompressor([]byte{0x21}, sevenZipLZMA2)
	sevenzip.RegisterDecompressor([]byte{0x03, 0x04, 0x01}, sevenZipPPMd)
	sevenzip.RegisterDecompressor([]byte{0x04, 0xf7, 0x11, 0x01}, sevenZipZstd)
}

// raiseCoderMemory makes coderMemory at least n.
func raiseCoderMemory(n int64) {
	for {
		cur := coderMemory.Load()
		if n <= cur || coderMemory.CompareAndSwap(cur, n) {
			return
		}
	}
}

// dictFor is the dictionary a coder gets: the one its properties name,
// no larger than its output or coderMemory.
func dictFor(named, unpacked uint64) int {
	d := min(named, unpacked, uint64(coderMemory.Load()), lzma.MaxDictCap)
	return int(max(d, lzma.MinDictCap))
}

// coderReader is a decoder closing the coder's input with it.
type coderReader struct {
	io.Reader
	in io.Closer
}

func (c coderReader) Close() error { return c.in.Close() }

// lzmaReader reads a raw LZMA stream r whose properties (its lc/lp/pb
// byte and dictionary size, 5 bytes) are props, size bytes long (^0:
// unknown, ended by its marker or by the data), its dictionary as
// dictFor bounds it, limit at most (what one member may unpack): the
// header lzma's reader knows is made of them. 7z's, zip's and NSIS's
// LZMA are read so.
func lzmaReader(props []byte, size uint64, limit int64, r io.Reader) (io.Reader, error) {
	if len(props) != 5 {
		return nil, errors.New("lzma: bad properties")
	}
	dict := dictFor(uint64(binary.LittleEndian.Uint32(props[1:])), min(size, uint64(limit)+1))
	head := binary.LittleEndian.AppendUint32([]byte{props[0]}, uint32(dict))
	head = binary.LittleEndian.AppendUint64(head, size)
	return lzma.ReaderConfig{DictCap: dict}.NewReader(io.MultiReader(bytes.NewReader(head), r))
}

func sevenZipLZMA(p []byte, size uint64, in []io.ReadCloser) (io.ReadCloser, error) {
	if len(in) != 1 {
		return nil, errors.New("7z LZMA: bad properties")
	}
	r, err := lzmaReader(p, size, coderMemory.Load(), in[0])
	if err != nil {
		return nil, err
	}
	return coderReader{r, in[0]}, nil
}

func sevenZipLZMA2(p []byte, size uint64, in []io.ReadCloser) (io.ReadCloser, error) {
	if len(in) != 1 || len(p) != 1 || p[0] > 40 {
		return nil, errors.New("7z LZMA2: bad properties")
	}
	named := uint64(2|p[0]&1) << (p[0]/2 + 11) // LZMA2's dictionary byte
	if p[0] == 40 {
		named = 1<<32 - 1
	}
	r, err := lzma.Reader2Config{DictCap: dictFor(named, size)}.NewReader2(in[0])
	if err != nil {
		return nil, err
	}
	return coderReader{r, in[0]}, nil
}

func sevenZipPPMd(p []byte, size uint64, in []io.ReadCloser) (io.ReadCloser, error) {
	if len(in) != 1 || len(p) != 5 {
		return nil, errors.New("7z PPMd: bad properties")
	}
	mem := binary.LittleEndian.Uint32(p[1:])
	if int64(mem) > coderMemory.Load() {
		return nil, fmt.Errorf("7z PPMd: a model of %d bytes", mem)
	}
	r, err := ppmd.NewH7zReader(in[0], int(p[0]), int(mem), int(min(size, 1<<62)))
	if err != nil {
		return nil, err
	}
	return coderReader{&r, in[0]}, nil
}

// zstdMaxWindow is the largest window a zstd frame may ask for (the
// zstd tool's default limit, 128 MiB, asks for --long; a frame asking
// for more is not decoded: unopened, suspected).
const zstdMaxWindow = 64 << 20

// newZstd is a zstd decoder of r whose window is bounded, on one
// goroutine.
func newZstd(r io.Reader) (*zstd.Decoder, error) {
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderLowmem(true))
}

func sevenZipZstd(_ []byte, _ uint64, in []io.ReadCloser) (io.ReadCloser, error) {
	if len(in) != 1 {
		return nil, errors.New("7z zstd: bad coder")
	}
	d, err := newZstd(in[0])
	if err != nil {
		return nil, err
	}
	return zstdCoder{d, in[0]}, nil
}

// zstdCoder is a zstd decoder closing it and the coder's input with it.
type zstdCoder struct {
	*zstd.Decoder
	in io.Closer
}

func (z zstdCoder) Close() error {
	z.Decoder.Close()
	return z.in.Close()
}
