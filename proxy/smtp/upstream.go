package smtp

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"
	"github.com/fsigkd/fsigkd/internal/dotstuff"
	"github.com/fsigkd/fsigkd/internal/mailpath"
	"github.com/fsigkd/fsigkd/internal/sendwait"
	"github.com/fsigkd/fsigkd/internal/smtpreply"
	"github.com/fsigkd/fsigkd/proxy"
)

// upstream is the session to the next hop. It is our own small client,
// not go-smtp's, for what a relay needs that a mail-sending client does
// not: the next hop's replies whole (relayed to the client as they are),
// STARTTLS per parent_tls, and XFORWARD or XCLIENT so that the next hop
// sees the real client.
type upstream struct {
	c       net.Conn
	br      *bufio.Reader
	timeout time.Duration
	ext     map[string]string
	lmtp    bool // the next hop speaks LMTP (parent_protocol): LHLO, a reply per recipient after the message
	// broken: the connection failed, or the next hop said 421 (it is
	// closing): the session is not kept for another client.
	broken bool
	told   string // the client and HELO the next hop was last told of (XCLIENT)
	asked  bool   // ask set the deadline of the reply read next
}

func newUpstream(c net.Conn, timeout time.Duration) *upstream {
	return &upstream{c: c, br: bufio.NewReaderSize(c, 4096), timeout: timeout, ext: map[string]string{}}
}

// reply is one reply of the next hop.
type reply struct{ smtpreply.Reply }

// err is the reply as go-smtp's server will write it to our client: code,
// enhanced code, text.
func (r reply) err() *gosmtp.SMTPError {
	text := strings.Join(r.Message(), " ")
	enh := gosmtp.NoEnhancedCode
	if f := strings.SplitN(text, " ", 2); len(f) == 2 {
		var a, b, c int
		if n, _ := fmt.Sscanf(f[0], "%d.%d.%d", &a, &b, &c); n == 3 && a == r.Code/100 {
			enh, text = gosmtp.EnhancedCode{a, b, c}, f[1]
		}
	}
	return &gosmtp.SMTPError{Code: r.Code, EnhancedCode: enh, Message: text}
}

func (u *upstream) read() (reply, error) {
	if !u.asked {
		u.c.SetReadDeadline(time.Now().Add(u.timeout))
	}
	u.asked = false
	defer u.c.SetReadDeadline(time.Time{})
	r, err := smtpreply.Read(u.br)
	if err == nil && r.Code < 200 {
		err = fmt.Errorf("next hop reply %q: SMTP has no 1xx", r.Text())
	}
	if err != nil || r.Code == 421 {
		u.broken = true
	}
	return reply{r}, err
}

// ask writes b, the end of a command or message whose reply is read
// next. The reply's first bytes are waited for with the write (package
// sendwait: the reply's first read then finds them, one system call less
// a command), by the read deadline ask sets and read keeps.
func (u *upstream) ask(b []byte) error {
	u.c.SetReadDeadline(time.Now().Add(u.timeout))
	u.asked = true
	return sendwait.Ask(u.c, u.br, b)
}

// cmd sends a command and reads the reply; a reply with another class than
// want is returned as the error.
func (u *upstream) cmd(want int, line string) (reply, error) {
	u.c.SetWriteDeadline(time.Now().Add(u.timeout))
	err := u.ask([]byte(line + "\r\n"))
	u.c.SetWriteDeadline(time.Time{})
	if err != nil {
		u.broken = true
		return reply{}, err
	}
	r, err := u.read()
	if err != nil {
		return r, err
	}
	if r.Code/100 != want/100 {
		return r, r.err()
	}
	return r, nil
}

// hello reads the greeting, says EHLO (HELO when refused), and takes the
// extensions; then, per parent_tls (tlsMode, and cfg for the handshake),
// it encrypts with STARTTLS and says EHLO again. With verify, a next hop
// that offers no STARTTLS or whose certificate fails gets no mail: the
// client is told to try later (451 4.7.5).
func (u *upstream) hello(name string, tlsMode string, cfg *tls.Config) error {
	greet, err := u.read()
	if err != nil {
		return err
	}
	if greet.Code != 220 {
		return greet.err()
	}
	if err := u.ehlo(name); err != nil {
		return err
	}
	_, offered := u.ext["STARTTLS"]
	_, on := u.c.(*tls.Conn) // implicit TLS (tls_port, transparent)
	switch {
	case tlsMode == "none" || on:
		return nil
	case !offered && tlsMode == "verify":
		return errNoTLS
	case !offered:
		return nil
	}
	if _, err := u.cmd(220, "STARTTLS"); err != nil {
		if tlsMode == "verify" {
			return errNoTLS
		}
		return err
	}
	tc := tls.Client(u.c, cfg)
	if err := proxy.Shake(tc, u.timeout); err != nil {
		if tlsMode == "verify" {
			return errTLSUnverified
		}
		return err
	}
	u.c, u.br = tc, bufio.NewReaderSize(tc, 4096)
	return u.ehlo(name)
}

// The replies for a next hop that parent_tls = verify refuses.
var (
	errNoTLS         = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 7, 5}, Message: "The next mail server offers no TLS; try again later"}
	errTLSUnverified = &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 7, 5}, Message: "The next mail server's certificate could not be verified; try again later"}
)

func (u *upstream) ehlo(name string) error {
	if u.lmtp {
		return u.extensions("LHLO " + name) // LMTP has no HELO to fall back on
	}
	err := u.extensions("EHLO " + name)
	var se *gosmtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 {
		_, err = u.cmd(250, "HELO "+name)
		u.ext = map[string]string{}
	}
	return err
}

// extensions says hello (EHLO or LHLO) and takes the extensions offered.
func (u *upstream) extensions(hello string) error {
	r, err := u.cmd(250, hello)
	if err != nil {
		return err
	}
	u.ext = map[string]string{}
	for _, l := range r.Message()[1:] {
		k, v, _ := strings.Cut(l, " ")
		u.ext[strings.ToUpper(k)] = v
	}
	return nil
}

func (u *upstream) has(ext string) bool { _, ok := u.ext[ext]; return ok }

// forward tells the next hop who the client really is, with XCLIENT or
// XFORWARD, as the settings ask: auto (the default) uses XCLIENT when the
// next hop offers it and XFORWARD otherwise, each only if the next hop
// accepts it from us. It gives the command the next hop took ("" when it
// was told nothing); an error is a broken session.
func (u *upstream) forward(mode string, addr net.IP, helo, name string) (string, error) {
	helo = xtext(helo)
	try := func(verb string) (bool, error) {
		var err error
		switch verb {
		case "XCLIENT":
			// The next hop answers XCLIENT as if the session started
			// anew, and expects EHLO again.
			if _, err = u.cmd(220, "XCLIENT ADDR="+addr.String()+" NAME=[UNAVAILABLE] HELO="+helo); err == nil {
				err = u.ehlo(name)
			}
		case "XFORWARD":
			_, err = u.cmd(250, "XFORWARD ADDR="+addr.String()+" NAME=[UNAVAILABLE] HELO="+helo+" PROTO=ESMTP")
		}
		var se *gosmtp.SMTPError
		if errors.As(err, &se) {
			return false, nil // refused: the session goes on without it
		}
		return err == nil, err
	}
	for _, verb := range map[string][]string{"xclient": {"XCLIENT"}, "xforward": {"XFORWARD"}, "auto": {"XCLIENT", "XFORWARD"}}[mode] {
		if !u.has(verb) {
			continue
		}
		told, err := try(verb)
		if err != nil {
			return "", err
		}
		if told {
			return verb, nil
		}
	}
	return "", nil
}

// xtext keeps a value one token: no spaces or control bytes.
func xtext(s string) string {
	if s == "" {
		return "[UNAVAILABLE]"
	}
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f || r == '+' || r == '=' {
			return -1
		}
		return r
	}, s)
}

// encodeXtext is s as RFC 3461's xtext (ENVID, ORCPT): a byte outside
// '!' to '~', and '+' and '=', as +HH.
func encodeXtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < '!' || c > '~' || c == '+' || c == '=' {
			fmt.Fprintf(&b, "+%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// dataWriter writes a message after DATA: dot-stuffed, CRLF lines, our own
// terminator at Close.
type dataWriter struct {
	u   *upstream
	w   *bufio.Writer
	st  dotstuff.Writer
	out messageOut
}

// messageOut writes a message to the next hop; its last write (the flush
// that ends it) asks for the next hop's verdict.
type messageOut struct {
	u    *upstream
	last bool
}

func (o *messageOut) Write(p []byte) (int, error) {
	if o.last {
		if err := o.u.ask(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return o.u.c.Write(p)
}

func (u *upstream) data() (*dataWriter, error) {
	if _, err := u.cmd(354, "DATA"); err != nil {
		return nil, err
	}
	u.c.SetWriteDeadline(time.Now().Add(u.timeout))
	w := dataBufs.Get().(*bufio.Writer)
	d := &dataWriter{u: u, w: w}
	d.out.u = u
	w.Reset(&d.out)
	d.st.W = d.w
	return d, nil
}

// dataBufs keeps the writers of dataWriter between mails.
var dataBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

func (d *dataWriter) Write(p []byte) (int, error) {
	n, err := d.st.Write(p)
	d.u.c.SetWriteDeadline(time.Now().Add(d.u.timeout))
	if err != nil {
		d.u.broken = true
	}
	return n, err
}

// close ends the message and reads the next hop's verdict on it.
func (d *dataWriter) close() (reply, error) {
	if err := d.end(); err != nil {
		return reply{}, err
	}
	return d.verdict()
}

// end writes the terminator; the next hop then has the whole message.
func (d *dataWriter) end() error {
	d.st.Close()
	// Only what is still buffered after the terminator is the last write:
	// a write the terminator's own bytes caused may not be.
	d.out.last = true
	err := d.w.Flush()
	d.w.Reset(nil) // the pool keeps no connection
	dataBufs.Put(d.w)
	d.u.c.SetWriteDeadline(time.Time{})
	if err != nil {
		d.u.broken = true
	}
	return err
}

// verdict reads one verdict of the next hop on the message: the only one
// over SMTP, the next recipient's over LMTP (RFC 2033 4.2).
func (d *dataWriter) verdict() (reply, error) {
	r, err := d.u.read()
	if err != nil {
		return r, err
	}
	if r.Code != 250 {
		return r, r.err()
	}
	return r, nil
}

// formatPath writes an address for MAIL FROM or RCPT TO (see package
// mailpath), refusing one no path can carry with 501.
func formatPath(addr string) (string, error) {
	p, err := mailpath.Format(addr)
	if err != nil {
		return "", errBadAddress
	}
	return p, nil
}

var errBadAddress = &gosmtp.SMTPError{Code: 501, EnhancedCode: gosmtp.EnhancedCode{5, 1, 3}, Message: "Bad address syntax"}
