// Command fsigkd is the gateway daemon: a scanning proxy for HTTP, SMTP,
// FTP and POP3, an ICAP server and a milter. It runs as a master process and one worker per service (see
// package supervisor); `fsigkd check` and `fsigkd status` read the
// settings and the running state, `fsigkd rules` prints the firewall
// rules, `fsigkd fsavd` is the bundled anti-virus daemon. The command line
// is read here (commands.go); the supervisor, the proxies and the engine
// are libraries.
package main

import (
	"os"

	ftpproxy "github.com/fsigkd/fsigkd/proxy/ftp"
	httpproxy "github.com/fsigkd/fsigkd/proxy/http"
	icapserver "github.com/fsigkd/fsigkd/proxy/icap"
	milterservice "github.com/fsigkd/fsigkd/proxy/milter"
	pop3proxy "github.com/fsigkd/fsigkd/proxy/pop3"
	smtpproxy "github.com/fsigkd/fsigkd/proxy/smtp"
	"github.com/fsigkd/fsigkd/worker"
)

// services are the proxies built into this binary, by settings section.
var services = worker.Registry{
	"http":   httpproxy.New,
	"smtp":   smtpproxy.New,
	"ftp":    ftpproxy.New,
	"pop":    pop3proxy.New,
	"icap":   icapserver.New,
	"milter": milterservice.New,
}

func main() {
	os.Exit(run(os.Args[1:], services))
}
