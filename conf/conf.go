// Package conf reads fsigkd's settings: fsigk.ini, with global keys and one
// section per service ([http], [smtp], [ftp], [pop]), and the legacy per-service
// virusgw.ini (flat key=value lines), whose keys win for its service.
//
// Every key is declared once, as a field of Global or Service with struct
// tags that give its INI name, its default and what it allows; the loader,
// the error messages, `fsigkd check` and the test that holds deploy/fsigk.ini
// complete all read that one declaration. A bad value stops start-up with
// "file:line: key: what is allowed"; an unknown key is a warning.
//
// Value forms: booleans are yes/no (also true/false, on/off, 1/0); sizes are
// bytes with an optional K, M or G suffix (powers of 1024); durations are
// whole seconds, or a Go duration such as 500ms; relative paths are under
// base_dir, and base_dir itself is relative to the directory of the file that
// names it.
package conf

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Services are the services fsigkd knows, in their fixed order: a service's
// index here is the child index in the worker log lines (M17, M18).
var Services = []string{"http", "smtp", "ftp", "pop"}

// Config is the whole effective configuration.
type Config struct {
	File     string              `json:"file"`
	Global   Global              `json:"global"`
	Services map[string]*Service `json:"services"`
}

// Global holds the keys outside any service section (or in [global]).
type Global struct {
	BaseDir         string        `ini:"base_dir" default:"." kind:"dir" doc:"state directory; relative paths below are under it"`
	TempDir         string        `ini:"temp_dir" default:"./tmp" kind:"path" doc:"where bodies, mails and transfers are spooled for scanning"`
	LogDir          string        `ini:"log_dir" default:"./log" kind:"path" doc:"error.log and access.log"`
	PidFile         string        `ini:"pid_file" default:"./fsigkd.pid" kind:"path"`
	LogLevel        string        `ini:"log_level" default:"info" enum:"critical,warning,info,debug"`
	License         string        `ini:"license" default:"" doc:"evaluation keys EVAL-YYYYMMDD-... expire at the end of that day (UTC); empty: no licence check"`
	TempMinFree     int64         `ini:"temp_min_free" default:"5M" kind:"size" min:"0" doc:"free space temp_dir needs at start (M09)"`
	SendfileTimeout time.Duration `ini:"sendfile_timeout" default:"120" min:"1s" doc:"a send that makes no progress this long is dropped (M07)"`
	ShutdownGrace   time.Duration `ini:"shutdown_grace" default:"30" min:"0s" doc:"how long sessions may finish on stop or reload"`
	RestartMaxDelay time.Duration `ini:"restart_max_delay" default:"30" min:"1s" doc:"cap of the back-off for a worker that keeps dying"`
	CoreDump        bool          `ini:"core_dump" default:"yes" doc:"let a crashing worker write a core file into base_dir (M18)"`
	M02Interval     time.Duration `ini:"max_connections_warning_interval" default:"60" min:"1s" doc:"M02 is logged at most once per interval per service"`
	ListenBacklog   int           `ini:"listen_backlog" default:"0" min:"0" max:"65535" doc:"each service's listen backlog while it has a free slot (0: the kernel's somaxconn); with every slot busy it is 5, as documented"`

	AVEngine        string        `ini:"av_engine" default:"fsavd" enum:"fsavd,clamd,icap" doc:"the anti-virus protocol"`
	AVServers       string        `ini:"av_servers" default:"./fsavd-socket-0" doc:"comma-separated sockets (relative to base_dir) or host:port"`
	AVICAPService   string        `ini:"av_icap_service" default:"/avscan" doc:"the ICAP service path"`
	AVInstream      bool          `ini:"av_instream" default:"no" doc:"clamd: stream files even over a Unix socket"`
	AVTimeout       time.Duration `ini:"av_timeout" default:"120" min:"1s" doc:"one scan, reads and writes included"`
	AVPool          int           `ini:"av_pool" default:"8" min:"1" max:"1024" doc:"idle engine connections kept per endpoint"`
	FsavdStart      bool          `ini:"fsavd_start" default:"yes" doc:"start and supervise the bundled fsavd on av_servers' first socket"`
	FsavdSigs       string        `ini:"fsavd_signatures" default:"" kind:"path" doc:"a directory of .hdb/.hsb/.ndb files, or one such file, for the bundled fsavd (EICAR is built in); a path with none is an error"`
	ASEngine        string        `ini:"as_engine" default:"spamd" enum:"spamd,rspamd" doc:"the anti-spam protocol"`
	ASServers       string        `ini:"as_servers" default:"./fsasd-socket" doc:"comma-separated sockets or host:port"`
	ASTimeout       time.Duration `ini:"as_timeout" default:"60" min:"1s"`
	NoticeTemplates string        `ini:"notice_templates" default:"" kind:"path" doc:"directory of admin.txt, recipient.txt, sender.txt notice templates; missing ones are built in"`
}

// Service holds one service's keys.
type Service struct {
	Name                     string        `json:"name"`
	Enable                   bool          `ini:"enable" default:"no"`
	VirusgwIni               string        `ini:"virusgw_ini" default:"" kind:"path" doc:"legacy per-service flat file whose keys win for this service"`
	BindAddr                 string        `ini:"bind_addr" default:"0.0.0.0" kind:"addr"`
	Port                     int           `ini:"port" default:"0" min:"1" max:"65535"`
	PreSpawn                 int           `ini:"pre_spawn" default:"64" min:"1" max:"20000" doc:"connections held at once (slots)"`
	Transparent              bool          `ini:"transparent" default:"no"`
	TransparentTproxy        bool          `ini:"transparent_tproxy" default:"no"`
	TransparentTproxyVersion int           `ini:"transparent_tproxy_version" default:"2" min:"1" max:"2"`
	InterceptPorts           string        `ini:"intercept_ports" default:"" doc:"ports the firewall diverts to this service, for fsigkd rules (comma-separated)"`
	ParentServerHost         string        `ini:"parent_server_host" default:""`
	ParentServerPort         int           `ini:"parent_server_port" default:"0" min:"0" max:"65535"`
	Action                   string        `ini:"action" default:""`
	MaxScanSize              int64         `ini:"max_scan_size" default:"100M" kind:"size" min:"1"`
	NotifyAdmin              bool          `ini:"notify_admin" default:"no"`
	AdminMXHost              string        `ini:"admin_mx_host" default:"localhost"`
	AdminMXPort              int           `ini:"admin_mx_port" default:"25" min:"1" max:"65535"`
	AdminNotificationID      string        `ini:"admin_notification_id" default:"" doc:"label of the admin notices (empty: fsigkd-<host>); the HMAC under base_dir/notice.key is the mark"`
	AdminAddress             string        `ini:"admin_address" default:"postmaster@localhost" doc:"the administrator's mailbox for detection notices"`
	BlockRiskware            bool          `ini:"block_riskware" default:"no"`
	FsasdService             bool          `ini:"fsasd_service" only:"smtp,pop" default:"no" doc:"check mail with the anti-spam engine"`
	IdleTimeout              time.Duration `ini:"idle_timeout" default:"300" min:"1s" doc:"a client or server silent this long is dropped"`
	HeaderTimeout            time.Duration `ini:"header_timeout" default:"30" min:"100ms" doc:"from its accept, a client must have sent its first request head (HTTP) or command (SMTP, FTP, POP3) within this, or it loses its slot; a later HTTP request head must arrive whole within this of its first byte"`
	ScanFailure              string        `ini:"scan_failure" default:"" doc:"what to do with what could not be scanned: pass, block or (smtp) tempfail"`
	OversizeAction           string        `ini:"oversize_action" default:"pass" enum:"pass,block" doc:"objects above max_scan_size: pass unscanned, or block (logged either way); a mail passed gets X-Virus-Status: unscanned(fsigkd), one blocked 554"`

	// HTTP only.
	AllowClients    string        `ini:"allow_clients" only:"http" default:"127.0.0.0/8, ::1/128, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7" kind:"nets" doc:"networks that may use the proxy"`
	ConnectPorts    string        `ini:"connect_ports" only:"http" default:"443" kind:"ports" doc:"ports CONNECT may reach (comma-separated)"`
	MaxHeaderSize   int64         `ini:"max_header_size" only:"http" default:"17K" kind:"size" min:"1024" doc:"response header bytes kept; the rest is dropped (M08)"`
	MaxRequestHead  int64         `ini:"max_request_header" only:"http" default:"64K" kind:"size" min:"1024" doc:"a larger request head is refused (431)"`
	BlockPage       string        `ini:"block_page" only:"http" default:"" kind:"path" doc:"HTML template of the block page; empty: the built-in one"`
	TrickleAfter    time.Duration `ini:"trickle_after" only:"http" default:"10" min:"0s" doc:"a download still arriving after this starts trickling to the client (0: never)"`
	TrickleBytes    int64         `ini:"trickle_bytes" only:"http" default:"4K" kind:"size" min:"1" doc:"bytes sent per trickle_interval while a download is held"`
	TrickleInterval time.Duration `ini:"trickle_interval" only:"http" default:"5" min:"100ms"`
	HoldBack        int64         `ini:"hold_back" only:"http" default:"1M" kind:"size" min:"1" doc:"the tail never sent before the verdict, and how far past trickled bytes a check scans (above the longest signature)"`

	// SMTP only.
	MaxMessageSize  int64         `ini:"max_message_size" only:"smtp" default:"50M" kind:"size" min:"1024" doc:"SIZE offered; a larger mail gets 554 Too long message"`
	MaxRecipients   int           `ini:"max_recipients" only:"smtp" default:"100" min:"1" max:"100000"`
	MaxLineLength   int           `ini:"max_line_length" only:"smtp" default:"2000" min:"512" max:"1000000" doc:"a longer command line is refused"`
	Hostname        string        `ini:"hostname" only:"smtp" default:"" doc:"the name in the greeting and Received lines; empty: the system's"`
	TLSCert         string        `ini:"tls_cert" only:"smtp" default:"" kind:"path" doc:"with tls_key: STARTTLS offered to clients"`
	TLSKey          string        `ini:"tls_key" only:"smtp" default:"" kind:"path"`
	SpamSubjectTag  string        `ini:"spam_subject_tag" only:"smtp,pop" default:"[SPAM]" doc:"put before the Subject of spam"`
	SpamRejectScore float64       `ini:"spam_reject_score" only:"smtp" default:"0" doc:"reject (554) spam scoring this or more; 0: never reject, tag only"`
	NotifyInterval  time.Duration `ini:"notify_digest_interval" only:"smtp" default:"60" min:"1s" doc:"more admin notices than notify_digest_after within this go out as one digest"`
	NotifyDigest    int           `ini:"notify_digest_after" only:"smtp" default:"10" min:"1"`
	ForwardClient   string        `ini:"forward_client" only:"smtp" default:"auto" enum:"auto,none,xforward,xclient" doc:"tell the next hop the real client: auto uses XCLIENT, else XFORWARD, whichever it offers and accepts (Postfix: smtpd_authorized_xclient_hosts / smtpd_authorized_xforward_hosts); a next hop told nothing sees the relay's address, logged once an hour"`
	LocalDomains    string        `ini:"local_domains" only:"smtp" default:"" kind:"domains" doc:"domains (and their subdomains) any client may send to; others only from relay_clients (554 5.7.1 at RCPT); empty: no check here, the next hop decides"`
	RelayClients    string        `ini:"relay_clients" only:"smtp" default:"127.0.0.0/8, ::1/128, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7" kind:"nets" doc:"clients that may send to any domain when local_domains is set"`

	// POP3 only.
	StatusHeader    bool   `ini:"status_header" only:"pop" default:"no" doc:"add X-Virus-Status: clean(fsigkd) to clean mails too (no: a clean mail arrives byte for byte)"`
	VirusSubjectTag string `ini:"virus_subject_tag" only:"pop" default:"[VIRUS REMOVED]" doc:"put before the Subject of a mail whose infected content was replaced (action = delete)"`

	// HTTP, FTP and POP3: where clients may have the proxy connect.
	AllowServers string `ini:"allow_servers" only:"http,ftp,pop" default:"0.0.0.0/0, ::/0" kind:"nets" doc:"servers clients may reach: networks, addresses, self (checked on the address connected to)"`
	DenyServers  string `ini:"deny_servers" only:"http,ftp,pop" default:"self, 127.0.0.0/8, ::1/128, 169.254.0.0/16, fe80::/10" kind:"nets" doc:"servers refused even when allowed: by default the gateway's own (self: every address of its interfaces; loopback, link-local); 0.0.0.0 and :: are always refused"`

	// FTP only.
	ServerActive     bool          `ini:"server_active" only:"ftp" default:"no" doc:"data connections to the server in active mode (PORT) instead of passive"`
	NoopInterval     time.Duration `ini:"noop_interval" only:"ftp" default:"30" min:"1s" doc:"NOOP to the server while a transfer is held (M12)"`
	ProgressInterval time.Duration `ini:"progress_interval" only:"ftp,pop" default:"10" min:"100ms" doc:"FTP: 150- lines to the client while a file is fetched and scanned; POP3: a mail not ready within this starts reaching the client as a folded X-Fsigkd-Progress header, one line per interval"`
	DataTimeout      time.Duration `ini:"data_timeout" only:"ftp" default:"60" min:"100ms" doc:"a data connection that does not come or stalls this long ends the transfer"`
	AllowAppend      bool          `ini:"allow_append" only:"ftp" default:"no" doc:"relay APPE (and COMB): each piece is then scanned alone, so a file sent in pieces can reach the server infected; no refuses them (550)"`
}

// serviceDefaults are the keys whose default depends on the service.
var serviceDefaults = map[string]map[string]string{
	"http": {"port": "9080", "action": "block", "scan_failure": "block", "intercept_ports": "80"},
	"smtp": {"port": "9025", "action": "deny", "parent_server_port": "25", "scan_failure": "tempfail", "intercept_ports": "25"},
	"ftp":  {"port": "9021", "action": "block", "scan_failure": "block", "intercept_ports": "21"},
	"pop":  {"port": "9110", "action": "delete", "parent_server_port": "110", "scan_failure": "block", "intercept_ports": "110"},
}

// actions lists what each service allows for action.
var actions = map[string][]string{
	"http": {"block", "pass"},
	"ftp":  {"block", "pass"},
	"smtp": {"pass", "deny", "blackhole", "delete", "sendback"},
	"pop":  {"pass", "deny", "delete"},
}

// scanFailures lists what each service allows for scan_failure.
var scanFailures = map[string][]string{
	"http": {"pass", "block"},
	"ftp":  {"pass", "block"},
	"smtp": {"pass", "block", "tempfail"},
	"pop":  {"pass", "block"},
}

// Enabled lists the enabled services in their fixed order.
func (c *Config) Enabled() []*Service {
	var out []*Service
	for _, name := range Services {
		if s := c.Services[name]; s != nil && s.Enable {
			out = append(out, s)
		}
	}
	return out
}

// Index is a service's fixed index (its child number in M17/M18).
func Index(name string) int {
	for i, s := range Services {
		if s == name {
			return i
		}
	}
	return -1
}

// Dump renders the effective settings as INI text, for `fsigkd check`.
func (c *Config) Dump() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# effective settings of %s\n", c.File)
	for _, f := range fieldsOf(&c.Global) {
		fmt.Fprintf(&b, "%s = %s\n", f.key, f.format())
	}
	for _, name := range Services {
		s := c.Services[name]
		fmt.Fprintf(&b, "\n[%s]\n", name)
		for _, f := range fieldsOf(s) {
			if f.appliesTo(name) {
				fmt.Fprintf(&b, "%s = %s\n", f.key, f.format())
			}
		}
	}
	return b.String()
}

// Marshal and Unmarshal carry the validated settings from the master to its
// workers, so that a worker never reads a file the master did not check.
func (c *Config) Marshal() ([]byte, error) { return json.Marshal(c) }

// Unmarshal is the inverse of Marshal.
func Unmarshal(b []byte) (*Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// Keys lists every key name, global ones first, for the sample-file test.
func Keys() (global, service []string) {
	for _, f := range fieldsOf(&Global{}) {
		global = append(global, f.key)
	}
	for _, f := range fieldsOf(&Service{}) {
		service = append(service, f.key)
	}
	sort.Strings(global)
	sort.Strings(service)
	return
}
