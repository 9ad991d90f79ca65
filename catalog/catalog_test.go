package catalog

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

var row = regexp.MustCompile("^\\| (M\\d\\d) \\| ([A-Za-z ]+?) \\| `(.*?)` \\|")

// published reads the catalogue table: id -> level column and message text.
func published(t *testing.T) map[string][2]string {
	t.Helper()
	doc, err := os.ReadFile("testdata/messages.md")
	if err != nil {
		t.Fatal(err)
	}
	// The project's spec folder, where it stands beside the repository,
	// must not have moved on from our copy.
	if spec, err := os.ReadFile("../../shared/spec/messages.md"); err == nil && !bytes.Equal(spec, doc) {
		t.Fatal("testdata/messages.md differs from shared/spec/messages.md: copy it again and update the table")
	}
	out := map[string][2]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			out[m[1]] = [2]string{m[2], m[3]}
		}
	}
	return out
}

// docFill turns our generalised templates back into the concrete text the
// catalogue shows.
var docFill = map[string][]string{
	"M01": {"strerror", "Address already in use", "errno", "98"},
	"M13": {"strerror", "Too many open files in system", "errno", "23"},
	"M14": {"strerror", "No such file or directory", "errno", "2"},
	"M20": {"strerror", "Connection reset by peer", "errno", "104"},
}

func TestTemplatesMatchPublishedCatalogue(t *testing.T) {
	pub := published(t)
	if len(pub) != 25 {
		t.Fatalf("parsed %d rows from messages.md, want 25", len(pub))
	}
	if len(Entries) != 25 {
		t.Fatalf("catalogue has %d entries, want 25", len(Entries))
	}
	for id, p := range pub {
		e, ok := Entries[id]
		if !ok {
			t.Errorf("%s missing from the catalogue", id)
			continue
		}
		if got := Fill(e.Template, docFill[id]...); got != p[1] {
			t.Errorf("%s template differs from messages.md:\n got %q\nwant %q", id, got, p[1])
		}
		if !strings.Contains(p[0], e.Level.String()) {
			t.Errorf("%s level %s, documented %q", id, e.Level, p[0])
		}
	}
}

func TestFilledMessages(t *testing.T) {
	cases := []struct {
		got  Message
		want string
	}{
		{M01("0.0.0.0", 9080, &wrapErr{syscall.EADDRINUSE}), "bind=Address already in use(98) (addr=0.0.0.0, port=9080). # Please check whether other service(mail/web server,etc...) is already running on port 9080."},
		{M02(10, 20), "Maximum connections: warning: Client connections reached maximum connections(10). More request will be blocked/rejected. If there is many warnings, please increase 'Maximum Connections' settings(pre_spawn value of virusgw.ini) of this service. (20 will be good value as start line)."},
		{M04("mx", 25, syscall.ECONNREFUSED), "connect=Connection refused(111) cannot connect to admin mail server[mx:25]"},
		{M06(syscall.ENOSPC, 4), "semget=No space left on device(28) semget failure. Childnum(pre_spawn=4) may be large. If needed, maximum semaphore number(SEMMNI) can be increased by adding a line like 'kernel.sem=250 128000 32 512' in '/etc/sysctl.conf' and running 'sysctl -p'."},
		{M13(syscall.EMFILE, "accept", false), "System call=Too many open files(24) accept"},
		{M17(ChildExit{Index: 0, ChildID: 3, MasterPID: 10, PID: 11, Code: 2, Status: 9, Signal: "SIGKILL"}), "child(0) stopped.(sig=17[SIGCHLD], si_code=2[CLD_KILLED],status=9, childid=3, cur_pid=10,pid=11"},
		{M18(ChildExit{Index: 1, ChildID: 3, MasterPID: 10, PID: 11, Code: 3, Status: 11, Signal: "SIGSEGV"}), "core dumped(child proxy process). Please send core file(core or core.xxx) on the installation directory and diag.tar.gz to support center. (child=1,sig=17[SIGCHLD], si_code=3[CLD_DUMPED],status=11(SIGSEGV),childid=3,cur_pid=10,pid=11)"},
		{M20(syscall.ECONNRESET, 3), "accept=Connection reset by peer(104) main/accept_loop/accept(s=3)"},
	}
	for _, c := range cases {
		if c.got.Text != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.got.ID, c.got.Text, c.want)
		}
		if strings.Contains(c.got.Text, "{") {
			t.Errorf("%s left a placeholder: %q", c.got.ID, c.got.Text)
		}
	}
	if M13(syscall.ENFILE, "x", true).Level != Critical || M13(syscall.ENFILE, "x", false).Level != Warning {
		t.Error("M13 level does not follow critical")
	}
}

// wrapErr wraps an errno the way the os and net packages do.
type wrapErr struct{ err error }

func (e *wrapErr) Error() string { return "bind: " + e.err.Error() }
func (e *wrapErr) Unwrap() error { return e.err }
