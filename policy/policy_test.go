package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDomainsMatchNamesUnderThem(t *testing.T) {
	d, err := ParseDomains("Example.COM., *.cdn.net, .tld.org, 192.0.2.7, [2001:db8::1]")
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{
		"example.com": "example.com", "WWW.example.com": "example.com", "a.b.example.com.": "example.com",
		"notexample.com": "", "example.com.evil.net": "", "cdn.net": "cdn.net", "x.cdn.net": "cdn.net",
		"tld.org": "tld.org", "192.0.2.7": "192.0.2.7", "192.0.2.8": "", "2001:db8::1": "2001:db8::1", "": "", "com": "",
	} {
		if got := d.Match(host); got != want {
			t.Errorf("%q: %q, want %q", host, got, want)
		}
	}
}

func TestPrefixesMatchByHostThenPath(t *testing.T) {
	p, err := ParsePrefixes("http://Example.com/downloads/, updates.vendor.net/, ftp://files.org/pub/a, example.com:8080/x")
	if err != nil {
		t.Fatal(err)
	}
	for u, want := range map[string]string{
		"http://example.com/downloads/a.zip":      "example.com/downloads/",
		"https://EXAMPLE.com/downloads/":          "example.com/downloads/",
		"http://example.com/download":             "",
		"http://example.com/Downloads/a":          "",
		"http://user@example.com/downloads/a":     "example.com/downloads/",
		"http://updates.vendor.net/any/thing?x=1": "updates.vendor.net/",
		"http://updates.vendor.net":               "updates.vendor.net/",
		"http://evil.net/updates.vendor.net/":     "",
		"ftp://files.org/pub/abc":                 "files.org/pub/a",
		"http://example.com:8080/x/y":             "example.com:8080/x",
		"http://example.com/x/y":                  "",
		"http://example.com.evil.net/downloads/a": "",
		"not a url": "",
	} {
		if got := p.Match(u); got != want {
			t.Errorf("%q: %q, want %q", u, got, want)
		}
	}
}

func TestNetsMatchMergedRanges(t *testing.T) {
	n, err := ParseNets("10.0.0.0/8, 10.1.0.0/16, 192.168.1.5, 192.168.1.6, 2001:db8::/32, ::ffff:172.16.0.0/108")
	if err != nil {
		t.Fatal(err)
	}
	for ip, in := range map[string]bool{
		"10.0.0.1": true, "10.255.255.255": true, "11.0.0.0": false, "9.255.255.255": false,
		"192.168.1.5": true, "192.168.1.6": true, "192.168.1.7": false, "::ffff:10.2.3.4": true,
		"2001:db8:1::1": true, "2001:db9::": false, "172.16.3.4": true, "172.32.0.0": false, "bogus": false,
	} {
		if got := n.Match(ip) != ""; got != in {
			t.Errorf("%s: %v, want %v", ip, got, in)
		}
	}
}

func TestAddressesAndDomains(t *testing.T) {
	a, err := ParseAddresses("Boss@Example.com, @partner.net")
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]string{
		"boss@example.com": "boss@example.com", "<BOSS@example.com>": "boss@example.com",
		"The Boss <boss@example.com>": "boss@example.com", "other@example.com": "",
		"x@partner.net": "@partner.net", "x@mail.partner.net": "@partner.net", "x@partner.net.evil": "", "": "",
	} {
		if got := a.Match(addr); got != want {
			t.Errorf("%q: %q, want %q", addr, got, want)
		}
	}
}

func TestTypes(t *testing.T) {
	ty, err := ParseTypes("video/*, image/jpeg")
	if err != nil {
		t.Fatal(err)
	}
	for ct, want := range map[string]string{
		"video/mp4": "video/*", "Image/JPEG; charset=x": "image/jpeg", "image/png": "", "video": "", "": "",
	} {
		if got := ty.Match(ct); got != want {
			t.Errorf("%q: %q, want %q", ct, got, want)
		}
	}
}

// TestSkipRecipientsNeedsEveryOne: a mail is skipped for its recipients
// only when all of them are listed.
func TestSkipRecipientsNeedsEveryOne(t *testing.T) {
	s, err := ParseSkip(SkipValues{Recipients: "@lists.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := s.Match(Facts{Recipients: []string{"a@lists.example.com", "b@lists.example.com"}}); k != "skip_recipients" {
		t.Fatalf("all listed: %q", k)
	}
	if k, _ := s.Match(Facts{Recipients: []string{"a@lists.example.com", "victim@example.com"}}); k != "" {
		t.Fatalf("one not listed: %q", k)
	}
}

// TestListFiles: @files are read a line at a time, comments skipped, and a
// bad line is named by file and line.
func TestListFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "hosts.txt")
	os.WriteFile(good, []byte("# trusted\nupdates.example.com\n\n  mirror.example.net  \n"), 0o644)
	d, err := ParseDomains("a.example.org, @" + good)
	if err != nil || d.Len() != 3 || d.Match("x.mirror.example.net") == "" {
		t.Fatalf("%v %d", err, d.Len())
	}
	badFile := filepath.Join(dir, "bad.txt")
	os.WriteFile(badFile, []byte("ok.example.com\nnot a host\n"), 0o644)
	_, err = ParseDomains("@" + badFile)
	if err == nil || !strings.Contains(err.Error(), badFile+":2:") {
		t.Fatalf("bad line: %v", err)
	}
	if _, err := ParseDomains("@" + filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing file was taken")
	}
	if got := Resolve("x.com, @lists/a.txt, @/abs/b.txt", "/base"); got != "x.com, @/base/lists/a.txt, @/abs/b.txt" {
		t.Fatalf("Resolve: %q", got)
	}
}

// TestHundredThousandEntries: a large list loads and answers by lookup.
func TestHundredThousandEntries(t *testing.T) {
	s := bigSkip(t)
	if k, e := s.Match(Facts{URL: "http://www.host99999.example.com/x"}); k != "skip_hosts" || e != "host99999.example.com" {
		t.Fatalf("%q %q", k, e)
	}
	if k, _ := s.Match(Facts{Client: "10.1.134.159"}); k != "skip_clients" {
		t.Fatalf("client: %q", k)
	}
	if k, _ := s.Match(Facts{URL: "http://site7.example.org/path/7/file", Client: "192.0.2.1"}); k != "skip_urls" {
		t.Fatalf("url: %q", k)
	}
	if k, _ := s.Match(Facts{URL: "http://unlisted.example.com/", Client: "192.0.2.1"}); k != "" {
		t.Fatalf("unlisted: %q", k)
	}
}

func bigSkip(t testing.TB) *Skip {
	s, err := ParseSkip(bigLists(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func bigLists(t testing.TB) SkipValues {
	dir := t.TempDir()
	var hosts, urls, nets strings.Builder
	for i := 0; i < 100000; i++ {
		fmt.Fprintf(&hosts, "host%d.example.com\n", i)
		fmt.Fprintf(&urls, "site%d.example.org/path/%d/\n", i%1000, i)
		fmt.Fprintf(&nets, "10.%d.%d.%d/32\n", i>>16&255, i>>8&255, i&255)
	}
	for name, b := range map[string]string{"hosts": hosts.String(), "urls": urls.String(), "nets": nets.String()} {
		os.WriteFile(filepath.Join(dir, name), []byte(b), 0o644)
	}
	return SkipValues{Hosts: "@" + dir + "/hosts", URLs: "@" + dir + "/urls", Clients: "@" + dir + "/nets"}
}

// BenchmarkSkipLookup: one object's facts against lists of 100,000
// hosts, 100,000 URL prefixes and 100,000 networks, not matching any.
func BenchmarkSkipLookup(b *testing.B) {
	s := bigSkip(b)
	f := Facts{URL: "http://www.unlisted.example.com/some/path/file.zip", Client: "192.0.2.1", ContentType: "application/zip"}
	b.ResetTimer()
	for b.Loop() {
		if k, _ := s.Match(f); k != "" {
			b.Fatal(k)
		}
	}
}

// BenchmarkSkipLoad: reading the three lists of 100,000 entries.
func BenchmarkSkipLoad(b *testing.B) {
	v := bigLists(b)
	for b.Loop() {
		if _, err := ParseSkip(v); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzMatch(f *testing.F) {
	s, err := ParseSkip(SkipValues{Hosts: "example.com, 192.0.2.1", URLs: "example.com/a/, x.net/", Clients: "10.0.0.0/8, ::1",
		Senders: "a@b.c, @d.e", Types: "video/*"})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{"http://example.com/a/b", "http://[::1]:80/", "ftp://u:p@x.net", "http://%zz/", "://", "@@@", "http://a..b/"} {
		f.Add(seed, "10.1.2.3", "a@b.c", "video/mp4")
	}
	f.Fuzz(func(t *testing.T, u, client, sender, ct string) {
		s.Match(Facts{URL: u, Client: client, Sender: sender, Recipients: []string{sender}, ContentType: ct})
	})
}
