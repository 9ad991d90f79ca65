package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fsigkd/fsigkd/internal/servertest"
	"github.com/fsigkd/fsigkd/proxy/pop3"
)

// popFigures measures POP3 retrieval from Dovecot, direct and through
// fsigkd (forward mode, USER alice@server), with -c clients each fetching
// the whole mailbox: mails of 10 KiB (base64 attachments, as mail
// carries files) and of 1 MiB.
func popFigures(dir string) {
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		bin = "/usr/sbin/dovecot"
	}
	if _, err := os.Stat(bin); err != nil || os.Geteuid() != 0 {
		fmt.Println("## POP3\n\nskipped: needs root and Dovecot (Debian package dovecot-pop3d)")
		return
	}
	fmt.Printf("## POP3: %d clients each retrieving the whole mailbox from Dovecot (best of 3)\n\n| mails | direct mails/s | through fsigkd mails/s | direct MB/s | through fsigkd MB/s |\n|---|---|---|---|---|\n", *conc)
	for _, m := range []struct{ size, count int }{{10 << 10, 200}, {1 << 20, 20}} {
		popRow(dir, bin, m.size, m.count)
	}
	fmt.Println()
}

func popRow(dir, bin string, size, count int) {
	ddir := filepath.Join(dir, fmt.Sprintf("dovecot-%d", size))
	check(os.MkdirAll(ddir, 0o755))
	os.Chmod(dir, 0o755)
	server := "127.0.0.1:" + strconv.Itoa(freePort())
	box, err := servertest.DovecotSetup(ddir, server, "mail_max_userip_connections = 1000\n")
	check(err)
	// Each mail its own (a mailbox of one mail repeated would measure the
	// verdict cache).
	var mail []byte
	for i := 0; i < count; i++ {
		mail = benchMail(size)
		check(box.Put(mail))
	}
	dc := exec.Command(bin, "-F", "-c", filepath.Join(ddir, "dovecot.conf"))
	check(dc.Start())
	defer func() { dc.Process.Kill(); dc.Wait() }()
	waitPort(atoiPort(server))

	p := freePort()
	d := startWith(filepath.Join(dir, fmt.Sprintf("pop-%d", size)), p, fmt.Sprintf("[pop]\nenable = yes\nbind_addr = 127.0.0.1\nport = %d\ndeny_servers =\n", p))
	defer stop(d)
	proxy := "127.0.0.1:" + strconv.Itoa(p)

	rate := func(addr, user string) float64 {
		best := 0.0
		for try := 0; try < 3; try++ {
			start := time.Now()
			var wg sync.WaitGroup
			errs := make([]error, *conc)
			for c := range errs {
				wg.Add(1)
				go func() { defer wg.Done(); errs[c] = fetchAll(addr, user, count) }()
			}
			wg.Wait()
			// Checked here, not in the clients: a failure unwinds the
			// bench's own goroutine (see main), which stops the daemons.
			check(errors.Join(errs...))
			if r := float64(count**conc) / time.Since(start).Seconds(); r > best {
				best = r
			}
		}
		return best
	}
	direct, through := rate(server, "alice"), rate(proxy, "alice@"+server)
	mb := float64(len(mail)) / 1e6
	fmt.Printf("| %d × %d KiB | %.0f | %.0f | %.0f | %.0f |\n", count, size>>10, direct, through, direct*mb, through*mb)
}

// benchMail is a mail of about size bytes: a text part and a base64
// attachment of random bytes.
func benchMail(size int) []byte {
	raw := make([]byte, size*3/4)
	rand.Read(raw)
	b64 := base64.StdEncoding.EncodeToString(raw)
	var b strings.Builder
	b.WriteString("From: a@example.com\r\nTo: alice@example.com\r\nSubject: bench\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n--b\r\nContent-Type: application/octet-stream; name=f.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for len(b64) > 76 {
		b.WriteString(b64[:76] + "\r\n")
		b64 = b64[76:]
	}
	b.WriteString(b64 + "\r\n--b--\r\n")
	return []byte(b.String())
}

// fetchAll logs in as user and retrieves mails 1 to n (without deleting).
func fetchAll(addr, user string, n int) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	br := bufio.NewReaderSize(c, 64<<10)
	cmd := func(line string) error {
		if line != "" {
			if _, err := io.WriteString(c, line+"\r\n"); err != nil {
				return err
			}
		}
		l, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if !strings.HasPrefix(l, "+OK") {
			return fmt.Errorf("%s: %s", line, strings.TrimSpace(l))
		}
		return nil
	}
	for _, l := range []string{"", "USER " + user, "PASS secret"} {
		if err := cmd(l); err != nil {
			return err
		}
	}
	for i := 1; i <= n; i++ {
		if err := cmd("RETR " + strconv.Itoa(i)); err != nil {
			return err
		}
		if _, err := pop3.Unstuff(io.Discard, br); err != nil {
			return err
		}
	}
	return cmd("QUIT")
}

func atoiPort(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
