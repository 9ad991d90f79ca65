package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/logs"
)

// IDHeader marks the gateway's own notices.
const IDHeader = "X-Admin-Notification-Id"

// Notice is one detection to tell the administrator, a sender or the
// recipients of.
type Notice struct {
	Subject string
	Body    string
}

// Compose writes the notice as a mail from from to to (CRLF lines, plain
// text), with a new Message-ID on host: every notice of the gateway is
// made here.
func (n Notice) Compose(from string, to []string, host string) []byte {
	return []byte(fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\nContent-Type: text/plain; charset=utf-8\r\nMIME-Version: 1.0\r\n\r\n%s",
		oneLine(from), oneLine(strings.Join(to, ">, <")), oneLine(n.Subject), time.Now().Format(time.RFC1123Z), MessageID(host), n.Body))
}

// Admin sends the administrator's notices from a queue: the session that
// found a virus never waits for the admin mail server. Up to DigestAfter
// notices in an Interval go one by one; past that, the rest of the
// interval's are held and sent as one digest when it ends.
type Admin struct {
	Sender      *Sender
	From, To    string
	ID          string // X-Admin-Notification-Id, before the mark
	Key         []byte // the notice key (see Mark)
	Interval    time.Duration
	DigestAfter int
	Log         *zap.Logger

	once sync.Once
	ch   chan Notice
	done chan struct{}
	stop chan struct{}
	mu   sync.Mutex
	lost int // dropped because the queue was full
}

func (a *Admin) start() {
	a.once.Do(func() {
		a.ch = make(chan Notice, 1000)
		a.done = make(chan struct{})
		a.stop = make(chan struct{})
		if a.Log == nil {
			a.Log = zap.NewNop()
		}
		queues.Lock()
		queues.admins = append(queues.admins, a)
		queues.Unlock()
		go a.run()
	})
}

// queues are the process's admin notice queues, for Queued.
var queues struct {
	sync.Mutex
	admins []*Admin
}

// Queued is how many admin notices wait to be sent in this process.
func Queued() int {
	queues.Lock()
	defer queues.Unlock()
	n := 0
	for _, a := range queues.admins {
		n += len(a.ch)
	}
	return n
}

// Notify queues n; it never blocks.
func (a *Admin) Notify(n Notice) {
	a.start()
	select {
	case a.ch <- n:
	default:
		a.mu.Lock()
		a.lost++
		a.mu.Unlock()
	}
}

// Close sends what is queued (held notices as a digest) and stops.
func (a *Admin) Close() {
	a.start()
	close(a.stop)
	<-a.done
}

func (a *Admin) run() {
	defer close(a.done)
	var held []Notice
	sent := 0
	window := time.NewTimer(a.Interval)
	defer window.Stop()
	flush := func() {
		a.mu.Lock()
		lost := a.lost
		a.lost = 0
		a.mu.Unlock()
		if len(held) > 0 || lost > 0 {
			a.send(digest(held, lost))
		}
		held, sent = nil, 0
	}
	for {
		select {
		case n := <-a.ch:
			if sent < a.DigestAfter {
				sent++
				a.send(n)
			} else {
				held = append(held, n)
			}
		case <-window.C:
			flush()
			window.Reset(a.Interval)
		case <-a.stop:
		drain:
			for {
				select {
				case n := <-a.ch:
					held = append(held, n)
				default:
					break drain
				}
			}
			flush()
			return
		}
	}
}

func digest(held []Notice, lost int) Notice {
	var b strings.Builder
	fmt.Fprintf(&b, "%d detections in a short time; one notice for them all.\r\n\r\n", len(held)+lost)
	for _, n := range held {
		fmt.Fprintf(&b, "- %s\r\n", n.Subject)
	}
	if lost > 0 {
		fmt.Fprintf(&b, "- and %d more not queued (the queue was full)\r\n", lost)
	}
	return Notice{Subject: fmt.Sprintf("[fsigkd] %d detections (digest)", len(held)+lost), Body: b.String()}
}

func (a *Admin) send(n Notice) {
	msg := Mark(a.Key, a.ID, n.Compose(a.From, []string{a.To}, a.Sender.Helo))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := a.Sender.Send(ctx, Mail{From: a.From, To: []string{a.To}, Data: msg}); err != nil {
		logs.Emit(a.Log, AdminFailure(a.Sender.Host, a.Sender.Port, err).Msg)
	}
}

func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// AdminFor is the admin notifier a service's settings ask for, or nil when
// notify_admin is off. hostname names the gateway in the notices' sender.
// key is the notice key (LoadKey).
func AdminFor(svc *conf.Service, hostname string, key []byte, log *zap.Logger) *Admin {
	if !svc.NotifyAdmin {
		return nil
	}
	return &Admin{
		Sender: &Sender{Host: svc.AdminMXHost, Port: svc.AdminMXPort, Helo: hostname},
		From:   "postmaster@" + hostname, To: svc.AdminAddress, ID: NotificationID(svc, hostname), Key: key,
		Interval: svc.NotifyInterval, DigestAfter: svc.NotifyDigest, Log: log,
	}
}

// NotificationID is admin_notification_id, or one made from the host name:
// a label for the administrator's filters, not a secret (the mark is).
func NotificationID(svc *conf.Service, hostname string) string {
	if svc.AdminNotificationID != "" {
		return svc.AdminNotificationID
	}
	return "fsigkd-" + hostname
}

// MessageID makes a new Message-ID on host.
func MessageID(host string) string {
	b := make([]byte, 12)
	rand.Read(b)
	if host == "" {
		host = "localhost"
	}
	return "<" + hex.EncodeToString(b) + ".fsigkd@" + host + ">"
}
