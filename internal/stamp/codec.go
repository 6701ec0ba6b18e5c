package stamp

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The stamp is read by every no-op apply, so it is stored in a line format
// that decodes without reflection (encoding/json took a quarter of the
// check): a header line, then one record per line, a keyword followed by
// Go-quoted fields separated by single spaces.
//
//	jitsi-agent-noop-stamp 1
//	created "2026-11-27T13:27:34.595327Z"
//	file "/etc/prosody/conf.avail/meet.cfg.lua" "file:..." "file:640:0:0:..."
//	...
const header = "jitsi-agent-noop-stamp"

func (s *Stamp) encode() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %d\n", header, s.Format)
	line := func(kw string, fields ...string) {
		b.WriteString(kw)
		for _, f := range fields {
			b.WriteByte(' ')
			b.WriteString(strconv.Quote(f))
		}
		b.WriteByte('\n')
	}
	sorted := func(kw string, m map[string]string) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			line(kw, k, m[k])
		}
	}
	line("created", s.Created.Format(time.RFC3339Nano))
	line("verified", s.Verified.Format(time.RFC3339Nano))
	line("program", s.Key.Program)
	line("dir", s.Key.Dir)
	for _, a := range s.Key.Args {
		line("arg", a)
	}
	sorted("input", s.Inputs)
	sorted("env", s.Env)
	for _, m := range s.Managed {
		line("managed", m)
	}
	keys := make([]string, 0, len(s.Files))
	for k := range s.Files {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		line("file", k, s.Files[k].Stat, s.Files[k].Content)
	}
	sorted("dirstate", s.Dirs)
	sorted("system", s.System)
	line("stdout", s.Stdout)
	line("stderr", s.Stderr)
	return b.Bytes()
}

// decode parses what encode wrote.
func decode(b []byte) (*Stamp, error) {
	first, rest, _ := bytes.Cut(b, []byte("\n"))
	if string(first) != fmt.Sprintf("%s %d", header, FormatVersion) {
		return nil, errors.New("not a stamp of this format")
	}
	s := &Stamp{Format: FormatVersion, Inputs: map[string]string{}, Env: map[string]string{},
		Files: map[string]FileState{}, Dirs: map[string]string{}, System: map[string]string{}}
	for len(rest) > 0 {
		var ln []byte
		ln, rest, _ = bytes.Cut(rest, []byte("\n"))
		kw, fields, err := fieldsOf(string(ln))
		if err != nil {
			return nil, err
		}
		want := map[string]int{"created": 1, "verified": 1, "program": 1, "dir": 1, "arg": 1, "input": 2, "env": 2,
			"managed": 1, "file": 3, "dirstate": 2, "system": 2, "stdout": 1, "stderr": 1}[kw]
		if want == 0 || len(fields) != want {
			return nil, fmt.Errorf("stamp line %q", kw)
		}
		switch kw {
		case "created", "verified":
			t, err := time.Parse(time.RFC3339Nano, fields[0])
			if err != nil {
				return nil, err
			}
			if kw == "created" {
				s.Created = t
			} else {
				s.Verified = t
			}
		case "program":
			s.Key.Program = fields[0]
		case "dir":
			s.Key.Dir = fields[0]
		case "arg":
			s.Key.Args = append(s.Key.Args, fields[0])
		case "input":
			s.Inputs[fields[0]] = fields[1]
		case "env":
			s.Env[fields[0]] = fields[1]
		case "managed":
			s.Managed = append(s.Managed, fields[0])
		case "file":
			s.Files[fields[0]] = FileState{Stat: fields[1], Content: fields[2]}
		case "dirstate":
			s.Dirs[fields[0]] = fields[1]
		case "system":
			s.System[fields[0]] = fields[1]
		case "stdout":
			s.Stdout = fields[0]
		case "stderr":
			s.Stderr = fields[0]
		}
	}
	return s, nil
}

// fieldsOf splits `keyword "a" "b"` into the keyword and the unquoted
// fields.
func fieldsOf(ln string) (string, []string, error) {
	kw, rest, _ := strings.Cut(ln, " ")
	var out []string
	for rest != "" {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return "", nil, err
		}
		v, err := strconv.Unquote(q)
		if err != nil {
			return "", nil, err
		}
		out = append(out, v)
		rest = strings.TrimPrefix(rest[len(q):], " ")
	}
	return kw, out, nil
}

// Load reads the stamp in stateDir under root.
func Load(root, stateDir string) (*Stamp, error) {
	b, err := readBounded(filepath.Join(root, stateDir, Name))
	if err != nil {
		return nil, err
	}
	return decode(b)
}

// readBounded reads at most maxSize bytes of p.
func readBounded(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, maxSize)
	}
	b := make([]byte, fi.Size()+1)
	n, err := f.Read(b)
	if err != nil || n != int(fi.Size()) {
		return nil, fmt.Errorf("read %s: short read (%v)", p, err)
	}
	return b[:n], nil
}
