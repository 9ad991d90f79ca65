package smtp

import (
	"net"
	"strings"

	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/internal/netlist"
)

// RelayRule is local_domains with relay_clients: who may send where. The
// relay asks it at RCPT, and a quarantine release asks it again before a
// kept mail is sent on, so that a release never sends where the relay
// itself would not.
type RelayRule struct {
	clients netlist.List // may send to any domain
	local   conf.Domains // what others may send to (none: any)
}

// RelayRuleOf is a service's relay rule.
func RelayRuleOf(svc *conf.Service) RelayRule {
	return RelayRule{clients: svc.RelayClients, local: svc.LocalDomains}
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
