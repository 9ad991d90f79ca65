// Package conf reads fsigkd's settings: fsigk.ini, with global keys and one
// section per service ([http], [smtp], [ftp], [pop], [icap]), and the legacy per-service
// virusgw.ini (flat key=value lines), whose keys win for its service.
//
// Every key is declared once, as a field of Global or Service with struct
// tags that give its INI name, its default, what it allows and what it
// means (doc, or doc_<service> where a section means something of its
// own); the loader, the error messages, `fsigkd check`, the comments of
// deploy/fsigk.ini and the tests that hold the sample and the README to
// them all read that one declaration. A bad value stops start-up with
// "file:line: key: what is allowed"; an unknown key is a warning.
//
// Value forms: booleans are yes/no (also true/false, on/off, 1/0); sizes are
// bytes with an optional K, M or G suffix (powers of 1024); durations are
// whole seconds, or a Go duration such as 500ms; relative paths are under
// base_dir, and base_dir itself is relative to the directory of the file that
// names it.
//
// A value is parsed once, here: a key whose type reads itself
// (encoding.TextUnmarshaler: the address lists, ports, domains, ICAP
// paths, and action, scan_failure, oversize_action and encrypted_action
// as outcome's values) holds the parsed value, which the services use as
// it is and the workers receive as it is. The skip and block lists stay
// text, with their @files: a worker reads those files itself, at start
// and at each reload, after check has read them.
package conf

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fsigkd/fsigkd/internal/netlist"
	"github.com/fsigkd/fsigkd/outcome"
	"github.com/fsigkd/fsigkd/policy"
)

// Services are the services fsigkd knows, in their fixed order: a service's
// index here is the child index in the worker log lines (M17, M18).
var Services = []string{"http", "smtp", "ftp", "pop", "icap", "milter"}

// Config is the whole effective configuration.
type Config struct {
	File     string              `json:"file"`
	Global   Global              `json:"global"`
	Services map[string]*Service `json:"services"`
}

// Global holds the keys outside any service section (or in [global]).
type Global struct {
	BaseDir           string        `ini:"base_dir" default:"." kind:"dir" doc:"State directory: pid file, semaphore record, sockets, temp and log dirs."`
	TempDir           string        `ini:"temp_dir" default:"./tmp" kind:"path" doc:"Spool for bodies, mails and transfers while they are scanned. Cleared of fsigkd's own leftovers at start."`
	LogDir            string        `ini:"log_dir" default:"./log" kind:"path" doc:"error.log and access.log (reopened on SIGUSR1, for logrotate)."`
	PidFile           string        `ini:"pid_file" default:"./fsigkd.pid" kind:"path" doc:"The master's pid file."`
	LogSyslog         bool          `ini:"log_syslog" default:"no" doc:"Send the error log to syslog too (facility daemon, ident fsigkd, the line's level as its priority)."`
	AccessLogFormat   string        `ini:"access_log_format" default:"native" enum:"native,json" doc:"native: the squid-like line with DETECT-STAT, ACTION and PROXY-STAT; json: one JSON object a line with the same fields, named, for log collectors."`
	LogLevel          string        `ini:"log_level" default:"info" enum:"critical,warning,info,debug" doc:"critical, warning, info or debug."`
	License           string        `ini:"license" default:"" secret:"yes" doc:"Evaluation keys EVAL-YYYYMMDD-... stop the gateway after that day (M21). Empty: no licence check."`
	TempMinFree       int64         `ini:"temp_min_free" default:"5M" kind:"size" min:"0" doc:"temp_dir must have this much free space at start (M09)."`
	SendfileTimeout   time.Duration `ini:"sendfile_timeout" default:"120" min:"1s" doc:"A scanned file whose receiver takes nothing for this long is dropped (M07)."`
	BindRetry         bool          `ini:"bind_retry" default:"no" doc:"An enabled service that cannot bind its port at start (taken, or below 1024 without the capability): no, the start fails (exit 1, the reason logged), so that systemd and scripts see it; yes, the other services are served and the bind is tried again every minute, its message logged each time, until it succeeds. Either way fsigkd status exits 4 and fsigkd_service_up is 0 while it is down."`
	UnreadyBeforeStop time.Duration `ini:"unready_before_stop" default:"0" min:"0s" doc:"At a stop (SIGTERM), the console's /readyz answers 503 for this long before the services stop accepting, so that a load balancer sends new clients elsewhere first; a second SIGTERM stops at once. 0: stop at once."`
	ShutdownGrace     time.Duration `ini:"shutdown_grace" default:"30" min:"0s" doc:"On stop and reload, sessions may finish for this long."`
	RestartMaxDelay   time.Duration `ini:"restart_max_delay" default:"30" min:"1s" doc:"A worker that keeps dying is restarted after a doubling delay, capped here."`
	CoreDump          bool          `ini:"core_dump" default:"yes" doc:"A crashing worker may write a core file into base_dir (M18)."`
	M02Interval       time.Duration `ini:"max_connections_warning_interval" default:"60" min:"1s" doc:"M02 (all slots busy) is logged at most once per interval for a service."`
	ListenBacklog     int           `ini:"listen_backlog" default:"0" min:"0" max:"65535" doc:"Each service's listen backlog (0: the kernel's somaxconn), so that a burst of new clients is taken at once. With every slot busy and a client waiting that no connection can give way to (none idle, none silent since its accept), it is 5, as documented: five wait in the queue, the rest in SYN_RECV until a slot frees."`

	Console         bool   `ini:"console" default:"yes" doc:"The master serves the web console and /metrics (Prometheus) on console_bind:console_port."`
	ConsoleBind     string `ini:"console_bind" default:"127.0.0.1" kind:"addr" doc:"The console's address. Anything but loopback needs console_password and console_tls_cert and _key: check refuses it otherwise."`
	ConsolePort     int    `ini:"console_port" default:"9012" min:"1" max:"65535" doc:"The console's port."`
	ConsolePassword string `ini:"console_password" default:"" secret:"yes" doc:"The console's password as a bcrypt hash (fsigkd passwd makes one); set, every page and /metrics ask for it (user admin, HTTP basic authentication)."`
	ConsoleTLSCert  string `ini:"console_tls_cert" default:"" kind:"path" doc:"A certificate and key: the console is served over HTTPS."`
	ConsoleTLSKey   string `ini:"console_tls_key" default:"" kind:"path"`

	AVEngine          string        `ini:"av_engine" default:"fsavd" enum:"fsavd,clamd,icap" doc:"The anti-virus engine: fsavd (F-Secure's protocol, and the bundled fsavd's), clamd, or icap."`
	AVServers         string        `ini:"av_servers" default:"./fsavd-socket-0" doc:"Its endpoints, comma-separated: sockets (relative to base_dir) or host:port, shared as av_balance says; a dead one is skipped and probed until it answers again."`
	AVBalance         string        `ini:"av_balance" default:"least" enum:"least,failover" doc:"How scans go to av_servers' endpoints: least, to the answering endpoint with the fewest scans under way (a farm of engines shares the work); failover, to the first that answers (a standby behind it takes over when it is down)."`
	AVICAPService     string        `ini:"av_icap_service" default:"/avscan" doc:"icap only: the service path."`
	AVInstream        bool          `ini:"av_instream" default:"no" doc:"clamd only: stream files (INSTREAM) even over a Unix socket instead of passing the descriptor (FILDES)."`
	AVTimeout         time.Duration `ini:"av_timeout" default:"120" min:"1s" doc:"One scan may take this long."`
	AVPool            int           `ini:"av_pool" default:"8" min:"1" max:"1024" doc:"Idle engine connections kept per endpoint."`
	VerdictCache      int           `ini:"verdict_cache" default:"20000" min:"0" max:"10000000" doc:"Verdicts (clean, infected, riskware) each service keeps by a hash of the object (BLAKE3-256; past 4 MiB, of its 4 MiB segments' BLAKE3), so that an object already scanned with the engine's current signatures is not scanned again (access log: Checks 0, detail \"verdict cached\"). Up to 64 KiB the hash is computed as the object is spooled; a larger object is hashed whole only when one with the same first 64 KiB was scanned before (or, with verdict_cache_redis, up to 4 MiB always, for the fleet's verdicts), so its first download costs no hash, its second is hashed and kept, and its third is answered from the cache. The engine's signature version is asked every 30 s and the cache emptied when it changes; fsavd and clamd only (an ICAP engine does not say its version). About 220 bytes a verdict (4.4 MB at 20000), and as many heads of objects met once, about 70 bytes each. 0: off."`
	VerdictCacheRedis string        `ini:"verdict_cache_redis" default:"" doc:"redis://[user:password@]host:port/db (rediss:// with TLS): a Redis or Valkey every gateway of a fleet shares, behind each service's verdict_cache, so that an object any of them scanned with the same signatures is not scanned again (its key: the engine's signature version, the object's hash and size; kept a day). A store down or slow costs at most 100 ms a lookup and a log line a minute, never a verdict. The type and name rules are each gateway's own. Empty: none."`
	QuarantineDir     string        `ini:"quarantine_dir" default:"./quarantine" kind:"path" doc:"Where the services with quarantine = yes keep what they blocked (each object with a .json of what is known of it; fsigkd quarantine list, show, release, delete)."`
	QuarantineMax     int64         `ini:"quarantine_max_size" default:"1G" kind:"size" min:"1M" doc:"The quarantine's objects in all are kept under this: the oldest go first."`
	QuarantineDays    int           `ini:"quarantine_days" default:"30" min:"1" max:"3650" doc:"Quarantined objects older than this many days go."`
	FsavdStart        bool          `ini:"fsavd_start" default:"yes" doc:"Start and supervise the bundled fsavd on av_servers' first socket."`
	FsavdSigs         string        `ini:"fsavd_signatures" default:"" kind:"path" doc:"Signature files for the bundled fsavd: a file or a directory of .hdb, .hsb, .mdb, .msb, .ndb and .ldb files and ClamAV's containers (.cvd, .cld, .cud: freshclam's /var/lib/clamav), read in place; of ClamAV's kinds the hash (of files and of PE sections), body and logical signatures are read (of the logical ones, those whose features the engine has), the others (.cdb, .imp, bytecode...) counted and said as a warning. EICAR is built in. Empty: EICAR only, which detects nothing but the EICAR test file, and is said as a warning by check, at start, by status, on the console and in /metrics. They are reloaded when they change (looked at every 30 s: freshclam's updates) and at SIGHUP."`
	SigsMaxAge        time.Duration `ini:"signatures_max_age" default:"7d" min:"1h" doc:"Signatures whose newest part is older than this (an update that stopped: freshclam, a copy job) are a warning, as an engine that knows only EICAR is: in the error log at start, at reload and when it first appears (the master looks each hour), and in check, status, the console and /metrics (fsigkd_engine_signatures_updated_timestamp_seconds). Days take d (7d)."`
	ASEngine          string        `ini:"as_engine" default:"spamd" enum:"spamd,rspamd" doc:"The anti-spam engine (for smtp with fsasd_service = yes): spamd or rspamd."`
	ASServers         string        `ini:"as_servers" default:"./fsasd-socket" doc:"Its endpoints, comma-separated: sockets (relative to base_dir) or host:port."`
	ASTimeout         time.Duration `ini:"as_timeout" default:"60" min:"1s" doc:"One check may take this long."`
	NoticeTemplates   string        `ini:"notice_templates" default:"" kind:"path" doc:"Notice templates (Go text/template: .Service .Name .Object .Client .Action .Sender .Recipients .Time; first line \"Subject: ...\"): admin.txt, recipient.txt, sender.txt in this directory; those missing are built in."`
}

// Rules are the service's block_types and block_names, read.
func (s *Service) Rules() (*policy.Rules, error) {
	return policy.ParseRules(s.BlockTypes, s.BlockNames)
}

// SkipValues are the service's skip lists, for policy.ParseSkip.
func (s *Service) SkipValues() policy.SkipValues {
	return policy.SkipValues{Hosts: s.SkipHosts, URLs: s.SkipURLs, Clients: s.SkipClients,
		Senders: s.SkipSenders, Recipients: s.SkipRecipients, Types: s.SkipTypes}
}

// Service holds one service's keys.
type Service struct {
	Name                     string               `json:"name"`
	Enable                   bool                 `ini:"enable" default:"no" doc:"Run this service."`
	VirusgwIni               string               `ini:"virusgw_ini" default:"" kind:"path" doc:"A legacy per-service file whose keys win for this service (relative to this file's directory)."`
	BindAddr                 string               `ini:"bind_addr" default:"0.0.0.0" kind:"addr" doc:"The address it listens on (0.0.0.0 or :: for every address)."`
	Port                     int                  `ini:"port" default:"0" min:"1" max:"65535" doc:"The port it listens on."`
	ProxyProtocolFrom        netlist.List         `ini:"proxy_protocol_from" default:"" doc:"Balancers (networks, addresses) in front of this service that speak HAProxy's PROXY protocol (version 1 or 2): a connection from one must begin with its header, whose client address then stands for the connection's everywhere (allow_clients, the skip lists, the access log, the next hop's XCLIENT, the original destination in transparent mode); one without a valid header is refused. Empty: none."`
	PreSpawn                 int                  `ini:"pre_spawn" default:"64" min:"1" max:"20000" doc:"Connections held at once; more wait in the listen backlog (M02)."`
	Transparent              bool                 `ini:"transparent" only:"http,smtp,ftp,pop" default:"no" doc:"Take connections redirected by the firewall (REDIRECT or TPROXY)."`
	TransparentTproxy        bool                 `ini:"transparent_tproxy" only:"http,smtp,ftp,pop" default:"no" doc:"Connect upstream from the client's own address (needs TPROXY and CAP_NET_ADMIN; M15 and the service stays down when the kernel refuses)."`
	TransparentTproxyVersion int                  `ini:"transparent_tproxy_version" only:"http,smtp,ftp,pop" default:"2" min:"1" max:"2" doc:"1 or 2: both mean mainline Linux TPROXY (IP_TRANSPARENT) today."`
	InterceptPorts           Ports                `ini:"intercept_ports" only:"http,smtp,ftp,pop" default:"" doc:"Ports the firewall diverts here, for 'fsigkd rules'."`
	ParentServerHost         string               `ini:"parent_server_host" only:"http,smtp,pop" default:"" doc_http:"Parent proxy (empty: connect directly)." doc_pop:"Empty: clients log in as USER name@server[:port] (the port defaults to parent_server_port, else 110). Set: every client goes to this server, its USER relayed as it is (name@domain mailboxes work), and APOP works." doc_smtp:"The next mail server."`
	ParentServerPort         int                  `ini:"parent_server_port" only:"http,smtp,pop" default:"0" min:"0" max:"65535" doc:"Its port."`
	Action                   outcome.Action       `ini:"action" default:"" doc_icap:"What a detection does: block (the ICAP answer carries a 403 with the block page, and X-Infection-Found naming the threat) or pass (204: delivered, logged ACTION:PASS, the admin told if notify_admin)." doc_ftp:"What a detection does: block (550, the file is not delivered) or pass (delivered, logged ACTION:PASS, the admin told if notify_admin)." doc_http:"What a detection does: block (403 and the block page), or pass (the object is delivered, logged ACTION:PASS, the admin told if notify_admin)." doc_pop:"An infected mail: delete (the mail reaches the client as its headers, Subject tagged, and a text saying what was found and removed; a DELE then deletes the original on the server), deny (-ERR: the mail stays on the server and the client cannot fetch it) or pass (delivered with X-Virus-Status: infected(...))." doc_smtp:"pass, deny, blackhole, delete or sendback." doc_milter:"What a detection does: deny (the MTA refuses the mail with 554 5.7.1 naming what was found; its client keeps it), hold (the MTA takes the mail and holds it in its own quarantine, Postfix's hold queue, for the administrator: postsuper -H releases it, postsuper -d deletes it), blackhole (the MTA takes the mail and discards it) or pass (delivered with X-Virus-Status: infected(...))."`
	MaxScanSize              int64                `ini:"max_scan_size" default:"100M" kind:"size" min:"1" doc:"Objects above this are not scanned, and no more than this of one is written to temp_dir: past it, oversize_action decides, and what comes after goes on as it arrives, never to disk." doc_pop:"A mail above this is not scanned, and no more than this of it is written to temp_dir: oversize_action says whether it is delivered (X-Virus-Status: unscanned(fsigkd); the rest relayed as the server sends it) or refused (-ERR; the rest is read and dropped, up to this size again and 64 MiB at least, past which the session ends)." doc_smtp:"A mail above this is not scanned: oversize_action below says whether it is delivered (X-Virus-Status: unscanned(fsigkd)) or refused (554)." doc_milter:"A mail above this is not scanned (no more of it is written to temp_dir; the MTA keeps the whole mail): oversize_action says whether it is delivered (X-Virus-Status: unscanned(fsigkd)) or refused (554)."`
	NotifyAdmin              bool                 `ini:"notify_admin" default:"no" doc:"Admin notice on a detection, to admin_address through admin_mx_host:admin_mx_port, marked with admin_notification_id (a label; empty: fsigkd-<host>) and an HMAC under base_dir/notice.key, so that the relay passes only its own notices unscanned."`
	AdminMXHost              string               `ini:"admin_mx_host" default:"localhost"`
	AdminMXPort              int                  `ini:"admin_mx_port" default:"25" min:"1" max:"65535"`
	AdminNotificationID      string               `ini:"admin_notification_id" default:"" doc:"Label of the admin notices (empty: fsigkd-<host>); the HMAC under base_dir/notice.key is the mark."`
	AdminAddress             string               `ini:"admin_address" default:"postmaster@localhost" doc:"The administrator's mailbox for detection notices."`
	BlockRiskware            bool                 `ini:"block_riskware" default:"no" doc:"Block riskware (adware, tools) too; no: it is delivered, and logged."`
	FsasdService             bool                 `ini:"fsasd_service" only:"smtp,pop,milter" default:"no" doc_pop:"Check mail with the anti-spam engine: spam gets spam_subject_tag and X-Spam-* headers; it is never deleted." doc_smtp:"Check mail with the anti-spam engine." doc_milter:"Check mail with the anti-spam engine: spam gets X-Spam-* headers and spam_subject_tag; at spam_reject_score or more the MTA refuses it."`
	IdleTimeout              time.Duration        `ini:"idle_timeout" default:"300" min:"1s" doc:"A peer silent this long is dropped."`
	HeaderTimeout            time.Duration        `ini:"header_timeout" default:"30" min:"100ms" doc:"From its accept, a client must have sent its first command within this." doc_http:"From its accept, a client must have sent its first request head whole within this, or it loses its slot; a later head must arrive whole within this of its first byte (slowloris)." doc_icap:"From its accept, a client must have sent its first request head whole within this, or it loses its slot."`
	ScanFailure              outcome.Failure      `ini:"scan_failure" default:"" doc:"What could not be scanned (engine down, object refused): pass or block." doc_pop:"A mail that could not be scanned: block (-ERR, the mail stays on the server for a later try) or pass (delivered, X-Virus-Status: unscanned(fsigkd))." doc_smtp:"What could not be scanned: pass, block (554) or tempfail (451: the sender tries again later, nothing is lost)." doc_milter:"What could not be scanned: tempfail (the MTA answers 451: the sender tries again later, nothing is lost), block (554) or pass (delivered, X-Virus-Status: unscanned(fsigkd))."`
	EncryptedAction          outcome.EncryptedAct `ini:"encrypted_action" default:"block" doc:"An encrypted archive (the engine's Heuristics.Encrypted.*, ClamAV's too), which no engine can look into: block (as a detection, per action), pass (delivered, logged DETECT-STAT:ENCRYPTED), or notify (delivered, and the admin told). Never judged clean."`
	OversizeAction           outcome.Oversized    `ini:"oversize_action" default:"pass" doc:"Objects above max_scan_size: pass (unscanned, logged) or block."`

	ArchivePasswords bool `ini:"archive_passwords" only:"smtp,pop,milter" default:"yes" doc:"An encrypted archive in a mail (zip, WinZip AES, 7z, RAR) is tried with the passwords the mail's text gives (\"password: 1234\", \"the password is ...\"; at most 16 candidates, 8 archives (32 MiB) and 64 tries a mail, 64 MiB unpacked, each checked by the archive's own CRC or MAC): opened, its members are scanned and typed like any attachment; not opened, encrypted_action decides."`
	Quarantine       bool `ini:"quarantine" default:"no" doc:"Keep what is blocked (a detection, a type or name rule; not what could not be scanned) in quarantine_dir, its id in the access log's quarantine field (DETECT-STAT:<kind>:<name>:<file>:<id>). On by default for mail (smtp, pop): a mail refused or deleted by mistake can be released."`

	// Type and name rules.
	BlockTypes string `ini:"block_types" default:"" kind:"list" doc:"Types refused whatever the engine says, told by their bytes (never by a name or Content-Type), in the object and in every member of every archive and mail part it holds: exe, dll, elf, macho, msi, lnk, iso, vhd, dmg, jar, apk, cab, zip, rar, 7z, office-macro, hta; js, vbs, ps1 and bat by the name (as Windows runs them); or a MIME type (application/x-ms-shortcut). Logged DETECT-STAT:BLOCKED:block_types=<type>. Comma-separated, and @file items (one entry a line, # comments; reread on SIGHUP)."`
	BlockNames string `ini:"block_names" default:"" kind:"list" doc:"File name patterns (*.scr, invoice*.zip; without case) refused whatever the engine says: the object's name (Content-Disposition, the URL, the FTP path) and every member's and mail part's. Logged DETECT-STAT:BLOCKED:block_names=<pattern>. Comma-separated, and @file items (one entry a line, # comments; reread on SIGHUP)."`

	// Skip lists: comma-separated entries and @files (one entry a line, #
	// comments; relative to base_dir), read by check at start and on
	// SIGHUP. What matches is passed unscanned, logged DETECT-STAT:SKIPPED.
	SkipHosts      string `ini:"skip_hosts" only:"http,ftp,pop,icap" default:"" kind:"list" doc:"Servers whose objects are passed unscanned: host names and domains (with every name under them), or addresses. Comma-separated, and @file items (one entry a line, # comments; reread on SIGHUP)."`
	SkipURLs       string `ini:"skip_urls" only:"http,ftp,icap" default:"" kind:"list" doc:"URL prefixes whose objects are passed unscanned (host/path; the scheme is not compared, the host is without case, the path byte for byte). Comma-separated, and @file items (one entry a line, # comments; reread on SIGHUP)."`
	SkipClients    string `ini:"skip_clients" default:"" kind:"list" doc:"Clients (networks, addresses) whose objects and mails are passed unscanned. Comma-separated, and @file items (one entry a line, # comments; reread on SIGHUP)."`
	SkipSenders    string `ini:"skip_senders" only:"smtp,pop,milter" default:"" kind:"list" doc:"Senders whose mail is passed unscanned: addresses and @domain (with its subdomains). The sender is the sender's own claim (SMTP: MAIL FROM; POP3: From): anyone can write it. Comma-separated, and @file items (one entry a line, # comments; reread on SIGHUP)." doc_pop:"Senders (the From header, the sender's own claim: anyone can write it) whose mail is passed unscanned: addresses and @domain (with its subdomains). Comma-separated, and @file items (one entry a line, # comments; reread on SIGHUP)."`
	SkipRecipients string `ini:"skip_recipients" only:"smtp,milter" default:"" kind:"list" doc:"Recipients whose mail is passed unscanned, when every recipient of the mail is listed: addresses and @domain (with its subdomains). Comma-separated, and @file items (one entry a line, # comments; reread on SIGHUP)."`
	// ListsDigest is the digest of the list files (skip and block lists)
	// when they were checked: a reload restarts the worker when a file
	// changed.
	ListsDigest string `json:"lists_digest,omitempty"`
	SkipTypes   string `ini:"skip_types" only:"http,icap" default:"" kind:"list" doc:"Content types (type/subtype, type/*) passed unscanned, as the server names them (Content-Type): the server's own claim, so list only what you would pass from any server. Comma-separated, and @file items (one entry a line, # comments; reread on SIGHUP)."`

	// HTTP only.
	AllowClients    netlist.List  `ini:"allow_clients" only:"http" default:"127.0.0.0/8, ::1/128, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7" doc:"Networks that may use the proxy: it is never an open proxy."`
	ConnectPorts    Ports         `ini:"connect_ports" only:"http" default:"443" doc:"Ports a CONNECT tunnel may reach."`
	MaxHeaderSize   int64         `ini:"max_header_size" only:"http" default:"17K" kind:"size" min:"1024" doc:"Response header bytes kept; the fields past it are dropped (M08), except those that frame the body."`
	MaxRequestHead  int64         `ini:"max_request_header" only:"http,icap" default:"64K" kind:"size" min:"1024" doc:"A larger request head is refused (431)." doc_icap:"A larger ICAP request head, its encapsulated HTTP heads included, is refused (400) and the connection closed."`
	BlockPage       string        `ini:"block_page" only:"http,icap" default:"" kind:"path" doc:"HTML template of the block page ({{.URL}}, {{.Name}}); empty: built-in."`
	TrickleAfter    time.Duration `ini:"trickle_after" only:"http" default:"10" min:"0s" doc:"A download still arriving after trickle_after seconds is trickled to the client, trickle_bytes every trickle_interval, so that it does not time out. Only bytes a scan has cleared go early (the body so far, hold_back past them: keep hold_back above the longest signature); the last hold_back bytes wait for the verdict. 0: never trickle."`
	TrickleBytes    int64         `ini:"trickle_bytes" only:"http" default:"4K" kind:"size" min:"1" doc:"Bytes sent per trickle_interval while a download is held."`
	TrickleInterval time.Duration `ini:"trickle_interval" only:"http" default:"5" min:"100ms"`
	HoldBack        int64         `ini:"hold_back" only:"http,icap" default:"1M" kind:"size" min:"1" doc:"The tail never sent before the verdict, and how far past trickled bytes a check scans (above the longest signature)." doc_icap:"A message the client wants back (no 204) is answered as it arrives (Squid stops when it has sent about 64K plus its read_ahead_gap, and waits for the answer): the bytes a scan of the prefix cleared go back, this many behind, and the final scan still decides (a detection then cuts the connection). Keep it above the longest signature and below what the client sends ahead."`

	// HTTP only: HTTPS.
	TLSIntercept     bool          `ini:"tls_intercept" only:"http" default:"no" doc:"Look inside HTTPS: a CONNECT (and, in transparent mode, a connection to port 443) is answered with a certificate for its host signed by the gateway's CA, the server is reached over TLS and its certificate checked as a browser checks it, and the HTTP inside is scanned as plain HTTP is. Clients must trust the CA first (fsigkd ca prints it): off as shipped."`
	TLSCACert        string        `ini:"tls_ca_cert" only:"http" default:"" kind:"path" doc:"The CA certificate (PEM) interception signs with, and tls_ca_key its key. Empty: the gateway's own, made at first start under base_dir (fsigkd-ca.pem; its key fsigkd-ca.key, mode 0600)."`
	TLSCAKey         string        `ini:"tls_ca_key" only:"http" default:"" kind:"path"`
	TLSCAFile        string        `ini:"tls_ca_file" only:"http" default:"" kind:"path" doc:"More roots (PEM) trusted for servers' certificates, beside the system's: an internal CA."`
	TLSBypass        string        `ini:"tls_bypass" only:"http" default:"" kind:"list" doc:"Hosts and domains (with every name under them) whose HTTPS is passed through untouched, not looked inside: banking, pinned apps. By the CONNECT's host and the name the client asks for (SNI). Comma-separated, and @file items (one entry a line, # comments)."`
	TLSRefusedBypass time.Duration `ini:"tls_refused_bypass" only:"http" default:"3600" min:"0s" doc:"A client that refuses the gateway's certificate for a host (a pinned app, a device without the CA) has that host passed through untouched for this long, logged once, instead of failing again and again. 0: always intercept."`
	BlockHosts       string        `ini:"block_hosts" only:"http" default:"" kind:"list" doc:"Hosts and domains (with every name under them) refused: a request gets the block page, a CONNECT a 403 (or, intercepted, the block page), also when only the name the client asks for (SNI) is listed. Logged DETECT-STAT:BLOCKED:block_hosts=<entry>. Comma-separated, and @file items (one entry a line, # comments)."`

	// SMTP only.
	MaxMessageSize  int64         `ini:"max_message_size" only:"smtp" default:"50M" kind:"size" min:"1024" doc:"A larger mail gets 554 Too long message; SIZE is offered with it."`
	MaxRecipients   int           `ini:"max_recipients" only:"smtp" default:"100" min:"1" max:"100000" doc:"A mail to more recipients gets 452 for the rest."`
	MaxLineLength   int           `ini:"max_line_length" only:"smtp" default:"2000" min:"512" max:"1000000" doc:"A longer command line is refused."`
	Hostname        string        `ini:"hostname" only:"smtp" default:"" doc:"The name in the greeting and in Received lines (empty: the system's)."`
	TLSCert         string        `ini:"tls_cert" only:"smtp,pop,ftp,icap" default:"" kind:"path" doc:"A certificate and key offer STARTTLS to clients, and serve tls_port." doc_ftp:"A certificate and key offer AUTH TLS to clients (explicit FTPS, RFC 4217): the control connection, and with PROT P the data connections, are encrypted up to the gateway, which reads what it scans." doc_pop:"A certificate and key offer STLS to clients (RFC 2595), and serve tls_port: the session is encrypted from the client to the gateway too." doc_icap:"A certificate and key serve ICAP over TLS on tls_port (Squid's icaps://, c-icap's TlsPort)."`
	TLSKey          string        `ini:"tls_key" only:"smtp,pop,ftp,icap" default:"" kind:"path"`
	TLSPort         int           `ini:"tls_port" only:"smtp,pop,ftp,icap" default:"0" min:"0" max:"65535" doc_ftp:"A second port, on bind_addr, whose clients speak TLS from their first byte (implicit FTPS, 990), with tls_cert; PBSZ and PROT then protect the data connections as with AUTH TLS. In transparent mode, 'fsigkd rules' diverts port 990 to it, and the server (the original destination) is reached over TLS as well, its certificate checked per parent_tls. 0: none." doc:"A second port, on bind_addr, whose clients speak TLS from their first byte (implicit TLS: SMTP submissions on 465, RFC 8314), with tls_cert; STARTTLS is not offered there. In transparent mode, 'fsigkd rules' diverts port 465 to it, and the next hop (the original destination) is reached over TLS as well, its certificate checked per parent_tls. 0: none." doc_pop:"A second port, on bind_addr, whose clients speak TLS from their first byte (POP3S, 995: RFC 8314), with tls_cert; STLS is not offered there. In transparent mode, 'fsigkd rules' diverts port 995 to it, and the mail server (the original destination) is reached over TLS as well, its certificate checked per parent_tls. 0: none." doc_icap:"A second port, on bind_addr, for ICAP over TLS (11344 by convention; Squid's icaps://), with tls_cert. 0: none."`
	ParentTLS       string        `ini:"parent_tls" only:"smtp,pop,ftp" default:"may" enum:"none,may,verify" doc_ftp:"TLS towards the server (AUTH TLS, then PBSZ 0 and PROT P: the data connections too): none, never; may, whenever the server takes AUTH TLS, encrypted but not authenticated (a certificate that does not verify is logged, once an hour for a server), data in the clear if it refuses PROT P; verify, required, its chain checked to the system's roots and its name, and the data encrypted: a server that fails gets no session (the client is told it cannot connect)." doc:"TLS towards the next hop (STARTTLS) or the mail server (STLS): none, never; may, whenever it is offered, encrypted but not authenticated, as mail servers do between themselves (a certificate that does not verify is logged, once an hour for a server); verify, required, its chain checked to the system's roots and its name: a server that offers no TLS, or whose certificate fails, gets no mail and the client is told to try later."`
	SpamSubjectTag  string        `ini:"spam_subject_tag" only:"smtp,pop,milter" default:"[SPAM]" doc:"Spam (fsasd_service = yes): the Subject gets this tag and X-Spam-* headers are added; at spam_reject_score or more the mail is refused (0: never)." doc_pop:"Spam (fsasd_service = yes): the Subject gets this tag and X-Spam-* headers are added; spam is never deleted."`
	SpamRejectScore float64       `ini:"spam_reject_score" only:"smtp,milter" default:"0" doc:"Reject (554) spam scoring this or more; 0: never reject, tag only."`
	SpamTagSigned   bool          `ini:"spam_tag_signed" only:"smtp,pop,milter" default:"no" doc:"A spam mail that carries a DKIM signature (a DKIM-Signature field) keeps its Subject: the signature covers it, and tagged it would no longer verify (and DMARC would fail downstream); the X-Spam-* fields are added above all the same, which no signature covers, and the access log says \"DKIM-signed: Subject kept\". yes: its Subject is tagged too."`
	DKIMVerify      bool          `ini:"dkim_verify" only:"smtp,milter" default:"yes" doc:"Check each DKIM signature of a signed mail as a receiving mail server does (the signer's key looked up in DNS through the system's resolver, 5 s at most) and add Authentication-Results: <hostname>; dkim=pass, fail, neutral, policy, temperror or permerror, with header.d and header.i, above the mail, so that what comes after the gateway knows the signature held when it arrived. A field that already claims this gateway's name is a forgery and is taken out (RFC 8601). An unsigned mail gets none. no: no check, no field."`
	NotifyInterval  time.Duration `ini:"notify_digest_interval" only:"smtp" default:"60" min:"1s" doc:"More admin notices than notify_digest_after within notify_digest_interval seconds go out as one digest."`
	NotifyDigest    int           `ini:"notify_digest_after" only:"smtp" default:"10" min:"1"`
	ForwardClient   string        `ini:"forward_client" only:"smtp" default:"auto" enum:"auto,none,xforward,xclient" doc:"Tell the next hop the real client, so that it applies its relay rules to the client and not to us: auto (XCLIENT when offered, else XFORWARD, each only if the next hop accepts it: Postfix's smtpd_authorized_xclient_hosts / _xforward_hosts), xclient, xforward or none. A next hop told nothing sees this relay's address for every client (logged once an hour): it must not trust that address to relay, or set local_domains."`
	ParentProtocol  string        `ini:"parent_protocol" only:"smtp" default:"smtp" enum:"smtp,lmtp" doc:"What the next hop speaks: smtp, or lmtp (RFC 2033), a mailbox server's delivery protocol (Dovecot's or Cyrus's LMTP). With lmtp the service speaks LMTP to its own clients too (LHLO: an MTA's LMTP delivery, as Postfix's virtual_transport = lmtp:inet:host:port), and the reply to each recipient after the message is the next hop's own for that recipient (one mailbox full, another delivered), so that the MTA retries or bounces each recipient alone. Not with transparent: a diverted client speaks SMTP."`
	LocalDomains    Domains       `ini:"local_domains" only:"smtp" default:"" doc:"Domains (with subdomains) any client may send to; other domains only from relay_clients (554 5.7.1 at RCPT). Empty: no check here."`
	RelayClients    netlist.List  `ini:"relay_clients" only:"smtp" default:"127.0.0.0/8, ::1/128, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7" doc:"Clients that may send to any domain when local_domains is set."`
	TrustedMTAs     netlist.List  `ini:"trusted_mtas" only:"smtp" default:"" doc:"MTAs (networks, addresses) that may tell the relay who their client was with Postfix's XFORWARD (smtp_send_xforward_command = yes in a content_filter's transport): EHLO offers it to them, and that client then stands for the mail everywhere (the spam engine, the skip lists and relay rules, the access log, the next hop's XCLIENT/XFORWARD). Anyone else gets 500 for it. Empty: none."`

	// POP3 only.
	StatusHeader    bool   `ini:"status_header" only:"pop" default:"no" doc:"yes: clean mails get X-Virus-Status: clean(fsigkd) too; no: a clean mail arrives byte for byte."`
	VirusSubjectTag string `ini:"virus_subject_tag" only:"pop" default:"[VIRUS REMOVED]" doc:"Put before the Subject of a mail whose infected content was replaced (action = delete)."`

	// ICAP only.
	RespmodPaths Paths         `ini:"respmod_paths" only:"icap" default:"/respmod, /avscan" doc:"ICAP service paths answering RESPMOD (what Squid's respmod_precache points at); /avscan is fsigkd's own ICAP client's default and c-icap's name."`
	ReqmodPaths  Paths         `ini:"reqmod_paths" only:"icap" default:"/reqmod, /avscan" doc:"ICAP service paths answering REQMOD (uploads: Squid's reqmod_precache)."`
	PreviewSize  int64         `ini:"preview_size" only:"icap" default:"1024" kind:"size" min:"0" doc:"The Preview offered in OPTIONS: bytes a client sends before the server asks for the rest (100 Continue); 0: no preview."`
	OptionsTTL   time.Duration `ini:"options_ttl" only:"icap" default:"3600" min:"1s" doc:"How long a client may keep the OPTIONS answer (Options-TTL)."`

	// HTTP, FTP and POP3: where clients may have the proxy connect.
	AllowServers netlist.List `ini:"allow_servers" only:"http,ftp,pop" default:"0.0.0.0/0, ::/0" doc_ftp:"Servers clients may reach (USER name@host[:port]), and those refused even so: by default the gateway's own (self: every address of its interfaces; loopback; link-local). 0.0.0.0 and :: are always refused." doc_http:"Servers clients may have the proxy connect to, plain requests and CONNECT alike, checked on the address connected to; those refused even so: by default the gateway's own (self: every address of its interfaces; loopback; link-local). 0.0.0.0 and :: are always refused." doc_pop:"Servers clients may reach (USER name@server), and those refused even so: by default the gateway's own (self: every address of its interfaces; loopback; link-local). 0.0.0.0 and :: are always refused."`
	DenyServers  netlist.List `ini:"deny_servers" only:"http,ftp,pop" default:"self, 127.0.0.0/8, ::1/128, 169.254.0.0/16, fe80::/10" doc:"Servers refused even when allowed: by default the gateway's own (self: every address of its interfaces; loopback, link-local); 0.0.0.0 and :: are always refused."`

	// FTP only.
	ServerActive     bool          `ini:"server_active" only:"ftp" default:"no" doc:"Data connections to the server: passive (no) or active (yes)."`
	NoopInterval     time.Duration `ini:"noop_interval" only:"ftp" default:"30" min:"1s" doc:"While a transfer is held, NOOP to the server this often (M12)."`
	ProgressInterval time.Duration `ini:"progress_interval" only:"ftp,pop" default:"10" min:"100ms" doc_ftp:"While a file is fetched and scanned, a 150- line to the client this often." doc_pop:"A mail not ready within this (a slow server, a long scan) starts reaching the client: its status line, then one folded X-Fsigkd-Progress header line per interval, so that no client times out waiting."`
	DataTimeout      time.Duration `ini:"data_timeout" only:"ftp" default:"60" min:"100ms" doc:"A data connection that does not come or stalls this long ends the transfer."`
	AllowAppend      bool          `ini:"allow_append" only:"ftp" default:"no" doc:"APPE (and COMB, which joins pieces) are refused with 550: each piece would be scanned alone, so a file sent in pieces could reach the server infected. yes relays them, for servers whose clients need them, at that cost."`
}

// serviceDefaults are the keys whose default depends on the service.
var serviceDefaults = map[string]map[string]string{
	"http": {"port": "9080", "action": "block", "scan_failure": "block", "intercept_ports": "80"},
	"smtp": {"port": "9025", "action": "deny", "parent_server_port": "25", "scan_failure": "tempfail", "intercept_ports": "25", "quarantine": "yes"},
	"ftp":  {"port": "9021", "action": "block", "scan_failure": "block", "intercept_ports": "21"},
	"pop":  {"port": "9110", "action": "delete", "parent_server_port": "110", "scan_failure": "block", "intercept_ports": "110", "quarantine": "yes"},
	"icap": {"port": "1344", "action": "block", "scan_failure": "block", "hold_back": "32K"},
	// A milter is asked by the MTA on the same machine: loopback as shipped.
	// Each MTA connection holds a slot for its SMTP session: above
	// Postfix's default_process_limit (100) as shipped.
	"milter": {"port": "9357", "bind_addr": "127.0.0.1", "pre_spawn": "128", "action": "deny", "scan_failure": "tempfail", "quarantine": "yes"},
}

// serviceWords are the keys whose words depend on the service: each
// service's words, checked as the key is read.
var serviceWords = map[string]map[string][]string{"action": actions, "scan_failure": scanFailures}

// actions lists what each service allows for action.
var actions = map[string][]string{
	"http": {"block", "pass"},
	"ftp":  {"block", "pass"},
	"smtp": {"pass", "deny", "blackhole", "delete", "sendback"},
	"pop":  {"pass", "deny", "delete"},
	"icap": {"block", "pass"},
	// The MTA answers its client, drops the mail (blackhole) or holds it
	// (hold); it sends no notices for the milter.
	"milter": {"pass", "deny", "blackhole", "hold"},
}

// scanFailures lists what each service allows for scan_failure.
var scanFailures = map[string][]string{
	"http":   {"pass", "block"},
	"ftp":    {"pass", "block"},
	"smtp":   {"pass", "block", "tempfail"},
	"pop":    {"pass", "block"},
	"icap":   {"pass", "block"},
	"milter": {"pass", "block", "tempfail"},
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

// Dump renders the effective settings as INI text, each key under its
// description, for `fsigkd check`.
func (c *Config) Dump() string { return c.dump(false) }

// DumpMasked is Dump with the values of secret keys (secret:"yes")
// masked, for diag.tar.gz.
func (c *Config) DumpMasked() string { return c.dump(true) }

// Masked is the text of a settings file with the values of secret keys
// masked.
func Masked(text string) string {
	secret := map[string]bool{}
	for _, f := range append(fieldsOf(&Global{}), fieldsOf(&Service{})...) {
		if f.tag.Get("secret") == "yes" {
			secret[f.key] = true
		}
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if k, v, ok := strings.Cut(l, "="); ok && secret[strings.TrimSpace(k)] && strings.TrimSpace(v) != "" {
			lines[i] = k + "= ***"
		}
	}
	return strings.Join(lines, "\n")
}

func (c *Config) dump(mask bool) string {
	value := func(f field) string {
		if mask && f.tag.Get("secret") == "yes" && f.format() != "" {
			return "***"
		}
		return f.format()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# effective settings of %s\n", c.File)
	for _, f := range fieldsOf(&c.Global) {
		fmt.Fprintf(&b, "%s%s = %s\n", comment(f.doc("")), f.key, value(f))
	}
	for _, name := range Services {
		s := c.Services[name]
		fmt.Fprintf(&b, "\n[%s]\n", name)
		for _, f := range fieldsOf(s) {
			if f.appliesTo(name) {
				fmt.Fprintf(&b, "%s%s = %s\n", comment(f.doc(name)), f.key, value(f))
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
