package conf

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fsigkd/fsigkd/outcome"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const sep = "-- want --\n"

// result renders a load the way the golden files record it.
func result(cfg *Config, warnings []string, err error) string {
	var b strings.Builder
	for _, w := range warnings {
		b.WriteString("warning: " + w + "\n")
	}
	if err != nil {
		b.WriteString("error:\n" + err.Error() + "\n")
	} else {
		b.WriteString(cfg.Dump())
	}
	// Paths are absolute: the golden files hold them relative to the
	// package, whatever machine runs the test.
	wd, _ := os.Getwd()
	return strings.ReplaceAll(b.String(), wd+string(os.PathSeparator), "$PKG/")
}

// TestGolden loads each testdata/*.txt (settings, a separator line, the
// expected warnings and effective settings or errors).
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			in, want, ok := strings.Cut(string(raw), sep)
			if !ok {
				t.Fatalf("%s has no %q line", file, strings.TrimSpace(sep))
			}
			cfg, warnings, err := Parse(file, []byte(in), readLimited)
			got := result(cfg, sortedCopy(warnings), err)
			if *update {
				os.WriteFile(file, []byte(in+sep+got), 0o644)
				return
			}
			if got != want {
				t.Errorf("%s:\n--- got\n%s--- want\n%s", file, got, want)
			}
		})
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestSampleLoadsCleanly holds deploy/fsigk.ini to the declared keys: it
// loads with no warning, and it documents every key in every section.
func TestSampleLoadsCleanly(t *testing.T) {
	cfg, warnings, err := Load("../deploy/fsigk.ini")
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Fatalf("warnings: %v", warnings)
	}
	raw, _ := os.ReadFile("../deploy/fsigk.ini")
	global, service := Keys()
	head, rest, _ := strings.Cut(string(raw), "\n[")
	for _, k := range global {
		if !strings.Contains(head, "\n"+k+" =") {
			t.Errorf("global key %s not in the sample", k)
		}
	}
	for _, sec := range Services {
		_, body, ok := strings.Cut("\n["+rest, "\n["+sec+"]\n")
		if !ok {
			t.Fatalf("no [%s] in the sample", sec)
		}
		body, _, _ = strings.Cut(body, "\n[")
		for _, k := range service {
			in := strings.Contains("\n"+body, "\n"+k+" =")
			if fieldNamed(k).appliesTo(sec) {
				if !in {
					t.Errorf("[%s] key %s not in the sample", sec, k)
				}
			} else if in {
				t.Errorf("[%s] has %s, a key of [%s] only", sec, k, fieldNamed(k).tag.Get("only"))
			}
		}
	}
	if len(cfg.Enabled()) != 5 {
		t.Errorf("sample enables %d services", len(cfg.Enabled()))
	}
}

// TestMarshalRoundTrip: the settings reach a worker as the master parsed
// them: the lists and words parsed once (address lists, ports, domains,
// paths, the decision settings) arrive as the same values, not as text
// to read again.
func TestMarshalRoundTrip(t *testing.T) {
	sample, err := os.ReadFile("../deploy/fsigk.ini")
	if err != nil {
		t.Fatal(err)
	}
	extra := "\n[smtp]\nlocal_domains = Example.ORG., example.net\ntrusted_mtas = 192.0.2.0/24, self\nscan_failure = block\n[http]\nconnect_ports = 443, 8443\noversize_action = block\n"
	cfg, _, err := Parse("fsigk.ini", append(sample, extra...), nil)
	if err != nil {
		t.Fatal(err)
	}
	smtp, http := cfg.Services["smtp"], cfg.Services["http"]
	if !slices.Equal(smtp.LocalDomains, Domains{"example.org", "example.net"}) || !smtp.TrustedMTAs.Self || len(smtp.TrustedMTAs.Nets) != 1 ||
		smtp.ScanFailure != outcome.FailBlock || !http.ConnectPorts.Has(8443) || http.OversizeAction != outcome.OversizeBlock {
		t.Fatalf("parsed: %+v %+v %v %v %v", smtp.LocalDomains, smtp.TrustedMTAs, smtp.ScanFailure, http.ConnectPorts, http.OversizeAction)
	}
	b, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Dump() != cfg.Dump() || !reflect.DeepEqual(back, cfg) {
		t.Fatal("settings changed on the way to a worker")
	}
}

// FuzzParse: no input makes the loader panic, and what loads dumps to text
// that loads again to the same settings.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, file := range files {
		raw, _ := os.ReadFile(file)
		in, _, _ := strings.Cut(string(raw), sep)
		f.Add([]byte(in))
	}
	sample, _ := os.ReadFile("../deploy/fsigk.ini")
	f.Add(sample)
	f.Add([]byte("[http]\nport = 1\x00\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := Parse("fuzz.ini", data, nil)
		if err != nil {
			return
		}
		dump := cfg.Dump()
		again, _, err := Parse("fuzz.ini", []byte(dump), nil)
		if err != nil {
			t.Fatalf("dump does not load again: %v\n%s", err, dump)
		}
		if again.Dump() != dump {
			t.Fatalf("dump changed on reload")
		}
	})
}

func fieldNamed(key string) field {
	for _, f := range fieldsOf(&Service{}) {
		if f.key == key {
			return f
		}
	}
	return field{}
}

// TestOversizeFileIsRefused: a settings file past the limit is refused
// with what is wrong, not read in part.
func TestOversizeFileIsRefused(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.ini")
	os.WriteFile(p, []byte(strings.Repeat("# padding\n", maxFileSize/10+1)), 0o644)
	if _, _, err := Load(p); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("error %v", err)
	}
}

// TestLegacyFileKeepsToItsService: a virusgw.ini sets its own service's
// keys; another service's key there is unknown.
func TestLegacyFileKeepsToItsService(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "smtp.ini"), []byte("max_recipients=7\nallow_clients=10.0.0.0/8\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "fsigk.ini"), []byte("[smtp]\nvirusgw_ini = smtp.ini\n"), 0o644)
	cfg, warnings, err := Load(filepath.Join(dir, "fsigk.ini"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Services["smtp"].MaxRecipients != 7 {
		t.Error("the legacy file's own key was not applied")
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], `unknown key "allow_clients"`) {
		t.Errorf("warnings %q", warnings)
	}
}

// TestSampleCommentsAreTheDeclarations: every comment right above a key
// in deploy/fsigk.ini is that key's doc, for that section, as declared
// (go test ./conf -update rewrites them).
func TestSampleCommentsAreTheDeclarations(t *testing.T) {
	raw, _ := os.ReadFile("../deploy/fsigk.ini")
	want, err := RewriteSample(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		os.WriteFile("../deploy/fsigk.ini", []byte(want), 0o644)
		return
	}
	if want != string(raw) {
		t.Fatalf("the sample's comments differ from the declarations; go test ./conf -update rewrites them.\n%s", firstDiff(string(raw), want))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n  have %q\n  want %q", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(al), len(bl))
}

// TestReadmeNamesDeclaredKeys: every setting the README names (a
// snake_case word in backquotes) is a declared key, so that the README
// cannot describe a key that was renamed or removed. The words it names
// that are not fsigkd's settings are listed here.
func TestReadmeNamesDeclaredKeys(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	notKeys := map[string]bool{}
	for _, w := range strings.Fields(readmeNotKeys) {
		notKeys[w] = true
	}
	global, service := Keys()
	keys := map[string]bool{}
	for _, k := range append(global, service...) {
		keys[k] = true
	}
	for _, m := range regexp.MustCompile("`([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`").FindAllStringSubmatch(string(raw), -1) {
		if !keys[m[1]] && !notKeys[m[1]] && !strings.HasPrefix(m[1], "fsigkd_") && !strings.HasPrefix(m[1], "process_") && !strings.HasPrefix(m[1], "go_") { // fsigkd_*, process_*, go_*: metrics (package metrics holds them)
			t.Errorf("the README names %s, which is no setting", m[1])
		}
	}
}

// readmeNotKeys are the snake_case words of the README that are not
// fsigkd's settings: c-icap's virus_scan service, Squid's
// read_ahead_gap, the JSON access log's field names, a Windows DLL's
// name (ws2_32).
// (Postfix's parameters are named too: the milter section.)
const readmeNotKeys = `virus_scan read_ahead_gap elapsed_ms content_type scan_ms default_process_limit milter_content_timeout milter_default_action ws2_32`

// TestSkipListsAreCheckedWithTheirFiles: a list file relative to base_dir
// is found there; a bad entry is named by the setting's line and, in a
// file, by the file's line too; a changed file changes the digest a reload
// compares.
func TestSkipListsAreCheckedWithTheirFiles(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "lists"), 0o755)
	list := filepath.Join(dir, "lists", "hosts.txt")
	os.WriteFile(list, []byte("example.com\n"), 0o644)
	ini := filepath.Join(dir, "fsigk.ini")
	os.WriteFile(ini, []byte("base_dir = .\n[http]\nenable = yes\nport = 18080\nskip_hosts = @lists/hosts.txt, example.org\nskip_clients = 10.0.0.0/8\n"), 0o644)
	cfg, _, err := Load(ini)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Services["http"].SkipHosts; got != "@"+list+", example.org" {
		t.Fatalf("skip_hosts %q", got)
	}
	digest := cfg.Services["http"].ListsDigest
	os.WriteFile(list, []byte("example.com\nexample.net\n"), 0o644)
	if cfg, _, _ = Load(ini); cfg.Services["http"].ListsDigest == digest {
		t.Fatal("the digest did not change with the file")
	}
	// Rewritten in place at once, the same size: the file's times (to
	// the nanosecond) still tell.
	digest = cfg.Services["http"].ListsDigest
	os.WriteFile(list, []byte("example.com\nexample.biz\n"), 0o644)
	if cfg, _, _ = Load(ini); cfg.Services["http"].ListsDigest == digest {
		t.Fatal("the digest did not change with a rewrite of the same size")
	}

	os.WriteFile(list, []byte("example.com\n# a comment\nexample com\n"), 0o644)
	if _, _, err := Load(ini); err == nil || !strings.Contains(err.Error(), ini+":5: skip_hosts: "+list+":3: ") {
		t.Fatalf("bad file line: %v", err)
	}
	os.WriteFile(ini, []byte("[smtp]\nenable = yes\nskip_senders = ok@example.com, not an address\nport = 25\n"), 0o644)
	if _, _, err := Load(ini); err == nil || !strings.Contains(err.Error(), ini+":3: skip_senders: \"not an address\"") {
		t.Fatalf("bad inline entry: %v", err)
	}
}
