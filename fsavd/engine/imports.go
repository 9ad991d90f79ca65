package engine

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
)

// A Windows program's import hash, as ClamAV's .imp signatures name it
// (HASH:Size:Name, the size the length of what is hashed): its imports
// written dll.function, lowercased, joined by commas in the import
// table's order. As clamscan reads them (TestImportHashesAsClamscanReadsThem):
//
//   - a DLL's name is cut at its first dot when .dll, .sys or .ocx
//     (in any case) begins there ("x.dll" is x, "lib.dllfoo" lib, while
//     "two.dots.dll" and "other.exe" stay whole);
//   - a function imported by number is "ord<n>", but from oleaut32,
//     ws2_32 and wsock32, whose numbers clamav names: Windows Sockets 1.1's
//     functions by their names (winsockOrdinals), and a program importing
//     another number from these is given no hash here (it is not looked
//     up) rather than a wrong one;
//   - a function's name past a letter, digit, '_' or '.' makes the whole
//     hash fail, as it does in clamav: no hash;
//   - a function whose name lies within the file's last 257 bytes is
//     left out, as clamav leaves it out (it asks for 256 bytes from two
//     past the name's hint, and gets none there);
//   - at most 1,024 DLLs are read, and a descriptor naming none ends the
//     table.

// Bounds of the import table read, as ClamAV's.
const (
	maxImportDLLs = 1024
	maxImportName = 256
)

// peImportHash is data's import hash text; false when data is no PE, has
// no import table, or one this engine gives no hash (see above).
func peImportHash(data []byte) (string, bool) {
	l := peLayout(data)
	if l == nil {
		return "", false
	}
	pe := int64(binary.LittleEndian.Uint32(data[0x3c:]))
	opt := pe + 24
	if opt+2 > int64(len(data)) {
		return "", false
	}
	plus := binary.LittleEndian.Uint16(data[opt:]) == 0x20b
	dirs := opt + 96
	if plus {
		dirs = opt + 112
	}
	if dirs+16 > int64(len(data)) {
		return "", false
	}
	rva := int64(binary.LittleEndian.Uint32(data[dirs+8:]))
	size := int64(binary.LittleEndian.Uint32(data[dirs+12:]))
	if rva == 0 || size == 0 {
		return "", false
	}
	at := l.fileOffset(rva)
	if at < 0 || at+size > int64(len(data)) {
		return "", false
	}
	var b strings.Builder
	first := true
	for left, n := size, 0; left > 20 && n < maxImportDLLs; left, n = left-20, n+1 {
		d := data[at+20*int64(n):]
		oft, nameRVA, ft := binary.LittleEndian.Uint32(d[0:]), binary.LittleEndian.Uint32(d[12:]), binary.LittleEndian.Uint32(d[16:])
		if nameRVA == 0 {
			break
		}
		o := l.fileOffset(int64(nameRVA))
		if o < 0 || o > int64(len(data)) {
			return "", false
		}
		dll := cString(data[o:], maxImportName)
		thunk := int64(-1)
		if oft != 0 {
			thunk = l.fileOffset(int64(oft))
		}
		if thunk <= 0 {
			if thunk = l.fileOffset(int64(ft)); thunk < 0 {
				return "", false
			}
		}
		if !importsOf(data, l, thunk, plus, dll, &b, &first) {
			return "", false
		}
	}
	return b.String(), true
}

// importsOf writes the functions of the thunks at thunk, imported from
// dll, to b; false when the hash fails.
func importsOf(data []byte, l *exeLayout, thunk int64, plus bool, dll string, b *strings.Builder, first *bool) bool {
	width, flag := int64(4), uint64(1)<<31
	if plus {
		width, flag = 8, uint64(1)<<63
	}
	short := dll
	if i := strings.IndexByte(dll, '.'); i >= 0 {
		ext := strings.ToLower(dll[i:])
		if strings.HasPrefix(ext, ".dll") || strings.HasPrefix(ext, ".sys") || strings.HasPrefix(ext, ".ocx") {
			short = dll[:i]
		}
	}
	fsize := int64(len(data))
	for ; thunk >= 0 && thunk+width <= fsize; thunk += width {
		var v uint64
		if plus {
			v = binary.LittleEndian.Uint64(data[thunk:])
		} else {
			v = uint64(binary.LittleEndian.Uint32(data[thunk:]))
		}
		if v == 0 {
			break
		}
		var fn string
		if v&flag != 0 {
			ord := uint16(v)
			switch strings.ToLower(short) {
			case "ws2_32", "wsock32":
				if fn = winsockOrdinals[ord]; fn == "" {
					return false // clamav may name this number: not guessed
				}
			case "oleaut32":
				return false // clamav names these numbers: not guessed
			default:
				fn = "ord" + strconv.FormatUint(uint64(ord), 10)
			}
		} else {
			o := l.fileOffset(int64(v & (flag - 1)))
			if o < 0 || o+2+min(maxImportName, fsize-o) > fsize {
				continue // no name read there: left out
			}
			fn = cString(data[o+2:], int(min(maxImportName, fsize-o)))
		}
		for i := 0; i < len(fn); i++ {
			c := fn[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '.') {
				return false
			}
		}
		if !*first {
			b.WriteByte(',')
		}
		*first = false
		b.WriteString(strings.ToLower(short))
		b.WriteByte('.')
		b.WriteString(strings.ToLower(fn))
	}
	return true
}

// cString is the text at the start of b up to its NUL, at most max bytes.
func cString(b []byte, max int) string {
	b = b[:min(len(b), max)]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// winsockOrdinals are the functions of Windows Sockets 1.1 by their
// numbers in wsock32.dll and ws2_32.dll, as its specification numbers
// them (TestWinsockOrdinalsAsSigtoolNamesThem holds each to clamav).
var winsockOrdinals = map[uint16]string{
	1: "accept", 2: "bind", 3: "closesocket", 4: "connect", 5: "getpeername", 6: "getsockname",
	7: "getsockopt", 8: "htonl", 9: "htons", 10: "ioctlsocket", 11: "inet_addr", 12: "inet_ntoa",
	13: "listen", 14: "ntohl", 15: "ntohs", 16: "recv", 17: "recvfrom", 18: "select", 19: "send",
	20: "sendto", 21: "setsockopt", 22: "shutdown", 23: "socket",
	51: "gethostbyaddr", 52: "gethostbyname", 53: "getprotobyname", 54: "getprotobynumber",
	55: "getservbyname", 56: "getservbyport", 57: "gethostname",
	101: "WSAAsyncSelect", 102: "WSAAsyncGetHostByAddr", 103: "WSAAsyncGetHostByName",
	104: "WSAAsyncGetProtoByNumber", 105: "WSAAsyncGetProtoByName", 106: "WSAAsyncGetServByPort",
	107: "WSAAsyncGetServByName", 108: "WSACancelAsyncRequest", 109: "WSASetBlockingHook",
	110: "WSAUnhookBlockingHook", 111: "WSAGetLastError", 112: "WSASetLastError",
	113: "WSACancelBlockingCall", 114: "WSAIsBlocking", 115: "WSAStartup", 116: "WSACleanup",
	151: "__WSAFDIsSet", 500: "WEP",
}
