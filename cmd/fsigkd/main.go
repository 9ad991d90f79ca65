// Command fsigkd is the gateway daemon: a scanning proxy for HTTP, SMTP
// and FTP. It runs as a master process and one worker per service (see
// package supervisor); `fsigkd check` and `fsigkd status` read the
// settings and the running state.
package main

import (
	"os"

	"github.com/fsigkd/fsigkd/supervisor"
)

// services are the proxies built into this binary, by settings section.
var services = supervisor.Registry{}

func main() {
	os.Exit(supervisor.Main(os.Args[1:], services))
}
