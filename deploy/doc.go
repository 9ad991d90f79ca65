// Package deploy holds what an installation uses beside the binary: the
// sample settings (fsigk.ini, whose comments the conf package writes), the
// systemd unit, the firewall rules for transparent mode, and under debian/
// the Debian packaging that scripts/package assembles. Its test builds the
// package, checks it with lintian, installs it, runs the gateway as it is
// installed, and removes and purges it.
package deploy
