package scanner

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"

	"github.com/fsigkd/fsigkd/catalog"
)

// ICAP is an RFC 3507 client: each object goes as the body of an HTTP
// response in a RESPMOD request, with a Preview and Allow: 204, so that a
// clean object costs the server's 204 and nothing else. The verdict is
// read from X-Infection-Found (c-icap, and the draft
// "ICAP extensions" most engines follow) or X-Virus-ID, not from the ICAP
// status: a 200 whose headers name no threat is reported as suspected.
type ICAP struct {
	Pool    *Pool
	Service string // the path of the service, e.g. "/avscan" or "/srv_clamav"
	Preview int    // bytes sent before the server decides (zero: 4096)
}

// NewICAP makes a client for endpoints (TCP host:port) and service.
func NewICAP(p *Pool, service string) *ICAP {
	p.Engine = "icap"
	p.DownMsg = catalog.M25
	if !strings.HasPrefix(service, "/") {
		service = "/" + service
	}
	return &ICAP{Pool: p, Service: service}
}

// maxICAPHead bounds the reply's ICAP and HTTP header blocks.
const maxICAPHead = 64 << 10

// Scan sends obj in a RESPMOD request.
func (ic *ICAP) Scan(ctx context.Context, obj *Object) (Verdict, error) {
	var v Verdict
	err := ic.Pool.Do(ctx, func(c *Conn) (bool, error) {
		preview := ic.Preview
		if preview <= 0 {
			preview = 4096
		}
		host := c.ep.Address
		url := obj.Meta.URL
		if url == "" || strings.ContainsAny(url, " \r\n") {
			url = "/"
		}
		ct := obj.Meta.ContentType
		if ct == "" || strings.ContainsAny(ct, "\r\n") {
			ct = "application/octet-stream"
		}
		reqHdr := "GET " + url + " HTTP/1.1\r\nHost: fsigkd\r\n\r\n"
		resHdr := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", ct, obj.Size)
		head := fmt.Sprintf("RESPMOD icap://%s%s ICAP/1.0\r\nHost: %s\r\nAllow: 204\r\nPreview: %d\r\nEncapsulated: req-hdr=0, res-hdr=%d, res-body=%d\r\n\r\n",
			host, ic.Service, host, preview, len(reqHdr), len(reqHdr)+len(resHdr))
		w := bufio.NewWriterSize(c, 64<<10)
		w.WriteString(head + reqHdr + resHdr)
		first := min(int64(preview), obj.Size)
		if err := writeChunk(w, obj, 0, first); err != nil {
			return false, err
		}
		if first == obj.Size {
			w.WriteString("0; ieof\r\n\r\n")
		} else {
			w.WriteString("0\r\n\r\n")
		}
		if err := w.Flush(); err != nil {
			return false, err
		}
		// The reply is read through a budget: the heads may take
		// maxICAPHead, and an encapsulated body as much as was sent.
		budget := &io.LimitedReader{R: c.R, N: maxICAPHead}
		tp := textproto.NewReader(bufio.NewReader(budget))
		code, hdr, err := readICAPHead(tp)
		if err != nil {
			return false, err
		}
		if code == 100 {
			if first < obj.Size {
				if err := writeChunk(w, obj, first, obj.Size-first); err != nil {
					return false, err
				}
			}
			w.WriteString("0\r\n\r\n")
			if err := w.Flush(); err != nil {
				return false, err
			}
			budget.N = maxICAPHead
			if code, hdr, err = readICAPHead(tp); err != nil {
				return false, err
			}
		}
		v = Verdict{Engine: "icap " + c.ep.Name}
		switch {
		case code == 204:
		case code == 200:
			if name := ICAPThreat(hdr); name != "" {
				v.add(Infected, name)
				break
			}
			// No threat named. c-icap answers so both when it hands an
			// object back unchanged (clean) and when it withholds a large
			// object it found infected (the original head, an empty body).
			// So: a 2xx head and every byte back is clean; anything else
			// is a block.
			st, err := encapsulatedStatus(tp, hdr)
			if err != nil || st < 200 || st > 299 {
				v.add(Suspected, "ICAP.Modified")
				break
			}
			budget.N = obj.Size + maxICAPHead
			if _, err := tp.ReadMIMEHeader(); err != nil {
				return false, err
			}
			n, err := io.Copy(io.Discard, httputil.NewChunkedReader(tp.R))
			if err != nil || n != obj.Size {
				v.add(Suspected, "ICAP.Withheld")
			}
		case code >= 500:
			m := catalog.M16()
			return false, &Error{Kind: Broken, Engine: "icap", Endpoint: c.ep.Name, Err: fmt.Errorf("ICAP %d", code), Msg: &m}
		default:
			return false, &Error{Kind: Protocol, Engine: "icap", Endpoint: c.ep.Name, Err: fmt.Errorf("ICAP %d", code)}
		}
		// The connection is not reused: what follows the headers (an
		// encapsulated block page) is not read.
		return false, nil
	})
	return v, err
}

// writeChunk writes n bytes of obj from off as one HTTP chunk.
func writeChunk(w *bufio.Writer, obj *Object, off, n int64) error {
	if n == 0 {
		return nil
	}
	fmt.Fprintf(w, "%x\r\n", n)
	if _, err := io.Copy(w, io.NewSectionReader(obj.ReaderAt(), off, n)); err != nil {
		return err
	}
	_, err := w.WriteString("\r\n")
	return err
}

func readICAPHead(tp *textproto.Reader) (int, textproto.MIMEHeader, error) {
	line, err := tp.ReadLine()
	if err != nil {
		return 0, nil, err
	}
	code, err := ParseICAPStatus(line)
	if err != nil {
		return 0, nil, err
	}
	hdr, err := tp.ReadMIMEHeader()
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, nil, err
	}
	return code, hdr, nil
}

// ParseICAPStatus reads "ICAP/1.0 204 Unmodified".
func ParseICAPStatus(line string) (int, error) {
	f := strings.SplitN(line, " ", 3)
	if len(f) < 2 || !strings.HasPrefix(f[0], "ICAP/") {
		return 0, fmt.Errorf("ICAP status line %q", line)
	}
	code, err := strconv.Atoi(f[1])
	if err != nil || code < 100 || code > 999 {
		return 0, fmt.Errorf("ICAP status line %q", line)
	}
	return code, nil
}

// ICAPThreat finds the threat name in an ICAP reply's headers:
// X-Infection-Found: Type=0; Resolution=2; Threat=<name>; or X-Virus-ID,
// or F-Secure's X-FSecure-Infection-Name (quoted).
func ICAPThreat(h textproto.MIMEHeader) string {
	if xi := h.Get("X-Infection-Found"); xi != "" {
		for _, kv := range strings.Split(xi, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
			if strings.EqualFold(k, "Threat") && strings.TrimSpace(v) != "" {
				return strings.TrimSpace(v)
			}
		}
	}
	if id := strings.TrimSpace(h.Get("X-Virus-ID")); id != "" {
		return id
	}
	return strings.Trim(strings.TrimSpace(h.Get("X-FSecure-Infection-Name")), `"`)
}

// encapsulatedStatus reads the status of the HTTP response that follows
// the ICAP headers, when Encapsulated says there is one.
func encapsulatedStatus(tp *textproto.Reader, hdr textproto.MIMEHeader) (int, error) {
	if !strings.Contains(hdr.Get("Encapsulated"), "res-hdr=0") {
		return 0, errors.New("no encapsulated response")
	}
	line, err := tp.ReadLine()
	if err != nil {
		return 0, err
	}
	f := strings.SplitN(line, " ", 3)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/") {
		return 0, fmt.Errorf("encapsulated status %q", line)
	}
	return strconv.Atoi(f[1])
}
