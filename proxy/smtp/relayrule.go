package smtp

import (
	"fmt"
	"net"
	"strings"

	"github.com/fsigkd/fsigkd/internal/netlist"
)

// RelayRule is local_domains with relay_clients: who may send where. The
// relay asks it at RCPT, and a quarantine release asks it again before a
// kept mail is sent on, so that a release never sends where the relay
// itself would not.
type RelayRule struct {
	clients netlist.List // may send to any domain
	local   []string     // what others may send to (none: any)
}

// NewRelayRule reads the two settings (check has already).
func NewRelayRule(localDomains, relayClients string) (RelayRule, error) {
	var r RelayRule
	var err error
	if r.clients, err = netlist.Parse(relayClients); err != nil {
		return r, fmt.Errorf("relay_clients: %v", err)
	}
	for _, d := range strings.Split(localDomains, ",") {
		if d = strings.ToLower(strings.Trim(strings.TrimSpace(d), ".")); d != "" {
			r.local = append(r.local, d)
		}
	}
	return r, nil
}

// Denied tells whether client may not send to rcpt: local_domains is set,
// the client is not in relay_clients (a client not known, nil, is not),
// and rcpt's domain is not local.
func (r RelayRule) Denied(client net.IP, rcpt string) bool {
	if len(r.local) == 0 || client != nil && r.clients.Contains(client) {
		return false
	}
	at := strings.LastIndexByte(rcpt, '@')
	if at < 0 {
		return false // a local mailbox without a domain (postmaster)
	}
	d := strings.ToLower(strings.TrimSuffix(rcpt[at+1:], "."))
	for _, l := range r.local {
		if d == l || strings.HasSuffix(d, "."+l) {
			return false
		}
	}
	return true
}
