// Command fsavd is the bundled anti-virus daemon: it serves F-Secure's
// fsavd protocol on a Unix socket with fsigkd's own engine (EICAR and
// ClamAV-format signatures). fsigkd can also start it itself
// (fsavd_start = yes), as `fsigkd fsavd`.
package main

import (
	"os"

	"github.com/fsigkd/fsigkd/fsavd"
)

func main() { os.Exit(fsavd.Main(os.Args[1:])) }
