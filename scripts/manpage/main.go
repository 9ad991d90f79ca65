// Command manpage writes fsigk.ini(5) from the sample settings, whose
// comments are every key's declared description (a test holds them to
// it): a section per service, each key with its sample value and what it
// means. Usage: go run ./scripts/manpage deploy/fsigk.ini VERSION > fsigk.ini.5
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"time"
)

// roff escapes text for a roff line: backslashes, and a leading dot or
// quote that would make it a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: manpage SAMPLE VERSION")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer f.Close()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, ".TH FSIGK.INI 5 %q \"fsigkd %s\" \"File Formats\"\n", time.Now().UTC().Format("2006-01-02"), os.Args[2])
	fmt.Fprintln(w, ".SH NAME\nfsigk.ini \\- settings of the fsigkd scanning gateway")
	fmt.Fprintln(w, ".SH SYNOPSIS\n.B /etc/fsigk/fsigk.ini")
	fmt.Fprintln(w, ".SH DESCRIPTION")
	fmt.Fprintln(w, "An INI file: global keys first (or under [global]), then a section per service: [http], [smtp], [ftp], [pop], [icap].")
	fmt.Fprintln(w, "Booleans are yes or no; sizes take K, M or G; durations are seconds (or 500ms, 2m); relative paths are under base_dir.")
	fmt.Fprintln(w, "An unknown key is a warning; a bad value stops start\\-up, and")
	fmt.Fprintln(w, ".B fsigkd check")
	fmt.Fprintln(w, "names it as file:line: key: what is allowed. The keys below are given with their values as the package ships them.")
	fmt.Fprintln(w, ".SH GLOBAL KEYS")
	var doc []string
	sc := bufio.NewScanner(f)
	header := true
	for sc.Scan() {
		line := sc.Text()
		switch {
		case header && (strings.HasPrefix(line, "#") || line == ""):
			// The file's own preamble.
			if line == "" {
				header = false
			}
		case strings.HasPrefix(line, "# "):
			doc = append(doc, strings.TrimPrefix(line, "# "))
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			fmt.Fprintf(w, ".SH [%s]\n", strings.ToUpper(strings.Trim(line, "[]")))
			doc = nil
		case strings.Contains(line, "="):
			key, val, _ := strings.Cut(line, "=")
			fmt.Fprintf(w, ".TP\n.BR %s \" = %s\"\n", roff(strings.TrimSpace(key)), roff(strings.TrimSpace(val)))
			if len(doc) > 0 {
				fmt.Fprintln(w, roff(strings.Join(doc, " ")))
			}
			doc = nil
		default:
			doc = nil
		}
	}
	fmt.Fprintln(w, ".SH FILES\n/etc/fsigk/fsigk.ini, /var/lib/fsigk, /var/log/fsigk, /var/spool/fsigk")
	fmt.Fprintln(w, ".SH SEE ALSO\n.BR fsigkd (8)")
}
