package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsigkd/fsigkd/tlsca"
)

// caCmd is `fsigkd ca`: the CA HTTPS interception signs with, printed
// for clients to import (PEM, or DER with --der), described (--info), or
// made anew (--new: the gateway's own only; clients must then import the
// new one, and the HTTP service takes it at its next reload). The
// gateway's own CA is made here if the service has not made it yet, so
// that clients can be prepared before interception is turned on.
func caCmd(args []string) int {
	var der, info, renew bool
	cfg, _, code := loadFlags("ca", " [--der | --info | --new]", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&der, "der", false, "")
		fs.BoolVar(&info, "info", false, "")
		fs.BoolVar(&renew, "new", false, "")
	})
	if cfg == nil {
		return code
	}
	svc := cfg.Services["http"]
	certFile, keyFile := tlsca.Paths(svc.TLSCACert, svc.TLSCAKey, cfg.Global.BaseDir)
	own := svc.TLSCACert == ""
	if renew {
		if !own {
			return fail(exitBadUsage, "ca: --new makes the gateway's own CA; tls_ca_cert names the administrator's (%s)", certFile)
		}
		stamp := time.Now().Format("20060102-150405")
		for _, f := range []string{certFile, keyFile} {
			if err := os.Rename(f, f+".old-"+stamp); err != nil && !os.IsNotExist(err) {
				return fail(exitBadFile, "ca: %v", err)
			}
		}
	}
	if own {
		host, _ := os.Hostname()
		made, err := tlsca.Ensure(certFile, keyFile, "fsigkd CA ("+host+")")
		if err != nil {
			return fail(exitBadFile, "ca: %v", err)
		}
		if made {
			ownLikeDir(cfg.Global.BaseDir, certFile, keyFile)
			fmt.Fprintf(os.Stderr, "made %s (reload the gateway for the HTTP service to use it)\n", certFile)
		}
	}
	ca, err := tlsca.Load(certFile, keyFile)
	if err != nil {
		return fail(exitBadFile, "ca: %v", err)
	}
	c := ca.Certificate()
	switch {
	case info:
		fmt.Printf("file:        %s\nsubject:     %s\nvalid:       %s to %s\nSHA-256:     %s\n",
			certFile, c.Subject, c.NotBefore.UTC().Format(time.DateOnly), c.NotAfter.UTC().Format(time.DateOnly), ca.Fingerprint())
	case der:
		os.Stdout.Write(c.Raw)
	default:
		os.Stdout.Write(ca.PEM())
	}
	return 0
}

// ownLikeDir gives files made by root to base_dir's owner, whom the
// services run as, so that they can read them.
func ownLikeDir(dir string, files ...string) {
	fi, err := os.Stat(filepath.Clean(dir))
	if err != nil {
		return
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		for _, f := range files {
			os.Chown(f, int(st.Uid), int(st.Gid))
		}
	}
}
