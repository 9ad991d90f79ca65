package conf

import (
	"encoding"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// field is one declared key bound to its place in a Global or Service.
type field struct {
	key  string
	tag  reflect.StructTag
	v    reflect.Value
	kind string
}

// fieldsOf lists the keys declared on the struct that ptr points to.
func fieldsOf(ptr any) []field {
	v := reflect.ValueOf(ptr).Elem()
	t := v.Type()
	var out []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		key := sf.Tag.Get("ini")
		if key == "" {
			continue
		}
		out = append(out, field{key: key, tag: sf.Tag, v: v.Field(i), kind: sf.Tag.Get("kind")})
	}
	return out
}

var durationType = reflect.TypeOf(time.Duration(0))

// appliesTo tells whether the key belongs to service's section ("" for
// the global keys): keys tagged only:"x" are x's alone.
func (f field) appliesTo(service string) bool {
	only := f.tag.Get("only")
	return only == "" || oneOf(service, strings.Split(only, ","))
}

// set parses s into the field, or says what the key allows.
func (f field) set(s string) error {
	s = strings.TrimSpace(s)
	if strings.ContainsRune(s, 0) {
		return fmt.Errorf("contains a NUL byte")
	}
	switch u, parses := f.v.Addr().Interface().(encoding.TextUnmarshaler); {
	case parses:
		// A type that reads itself: the services get the parsed value.
		return u.UnmarshalText([]byte(s))
	case f.v.Type() == durationType:
		d, err := parseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration: whole seconds (120), a unit (500ms, 2m) or days (7d)", s)
		}
		if m := f.tag.Get("min"); m != "" {
			min, _ := time.ParseDuration(m)
			if d < min {
				return fmt.Errorf("%s is below the minimum %s", d, min)
			}
		}
		f.v.SetInt(int64(d))
	case f.v.Kind() == reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil || x < 0 || x > 1e6 {
			return fmt.Errorf("%q is not a number from 0", s)
		}
		f.v.SetFloat(x)
	case f.v.Kind() == reflect.Bool:
		b, ok := parseBool(s)
		if !ok {
			return fmt.Errorf("%q is not yes or no", s)
		}
		f.v.SetBool(b)
	case f.v.Kind() == reflect.Int || f.v.Kind() == reflect.Int64:
		var n int64
		var err error
		if f.kind == "size" {
			n, err = parseSize(s)
			if err != nil {
				return fmt.Errorf("%q is not a size: bytes with an optional K, M or G suffix", s)
			}
		} else {
			n, err = strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not a whole number", s)
			}
		}
		if err := f.bounds(n); err != nil {
			return err
		}
		f.v.SetInt(n)
	case f.v.Kind() == reflect.String:
		if enum := f.tag.Get("enum"); enum != "" && !oneOf(s, strings.Split(enum, ",")) {
			return fmt.Errorf("%q is not one of %s", s, strings.ReplaceAll(enum, ",", ", "))
		}
		if f.kind == "addr" && net.ParseIP(s) == nil {
			return fmt.Errorf("%q is not an IPv4 or IPv6 address", s)
		}
		f.v.SetString(s)
	}
	return nil
}

func (f field) bounds(n int64) error {
	if m := f.tag.Get("min"); m != "" {
		if min, _ := strconv.ParseInt(m, 10, 64); n < min {
			return fmt.Errorf("%d is below the minimum %d", n, min)
		}
	}
	if m := f.tag.Get("max"); m != "" {
		if max, _ := strconv.ParseInt(m, 10, 64); n > max {
			return fmt.Errorf("%d is above the maximum %d", n, max)
		}
	}
	return nil
}

// format renders the field's value in the form set accepts.
func (f field) format() string {
	switch m, writes := f.v.Interface().(encoding.TextMarshaler); {
	case f.v.Type() == durationType:
		return FormatDuration(time.Duration(f.v.Int()))
	case writes:
		b, _ := m.MarshalText()
		return string(b)
	case f.v.Kind() == reflect.Bool:
		if f.v.Bool() {
			return "yes"
		}
		return "no"
	case f.kind == "size":
		return formatSize(f.v.Int())
	case f.v.Kind() == reflect.Int || f.v.Kind() == reflect.Int64:
		return strconv.FormatInt(f.v.Int(), 10)
	case f.v.Kind() == reflect.Float64:
		return strconv.FormatFloat(f.v.Float(), 'g', -1, 64)
	}
	return f.v.String()
}

// formatSize writes a size in the largest unit it is a whole number of.
func formatSize(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n != 0 && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "yes", "true", "on", "1":
		return true, true
	case "no", "false", "off", "0":
		return false, true
	}
	return false, false
}

// FormatDuration writes a duration as the settings take it: whole days
// with d, whole seconds as a number, anything else as Go writes it.
func FormatDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10)
	}
	return d.String()
}

func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > 36500 {
			return 0, fmt.Errorf("bad duration")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > 1<<31 {
			return 0, fmt.Errorf("out of range")
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("bad duration")
	}
	return d, nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		}
		if mult > 1 {
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad size")
	}
	return n * mult, nil
}

func oneOf(s string, set []string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// isDomain: labels of letters, digits and hyphens (or UTF-8), dot-separated.
func isDomain(d string) bool {
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 0x80 || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return len(d) <= 253
}
