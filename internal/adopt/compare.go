package adopt

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// Comparing the host's files with what the imported spec renders, setting
// by setting, in each file's own grammar. What the host has and the spec
// cannot express becomes extra text (kept); what differs becomes a finding
// with the reason.

var secretKey = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?i)(secret|password|passwd|_key$|^key$)`) }) // compiled on first use, not at every start

func mask(key, v string) string {
	if secretKey().MatchString(key) && v != "" {
		return "(sensitive)"
	}
	return v
}

const reasonDerived = "jitsi-agent derives this from the spec"

// keptReason explains a kept setting; a secret kept in extra text is
// inline in the spec from now on, which the report must say.
func keptReason(key, base string) string {
	if secretKey().MatchString(key) {
		return base + "; it is a secret and now sits inline in the spec's extra block: keep the spec 0600"
	}
	return base
}

// ---- Prosody ----

func compareProsody(file string, host, out *prosodyConfig, keep bool) ([]Finding, string, map[string][]string) {
	var fs []Finding
	mods := map[string][]string{}
	var extra strings.Builder
	header := func(s *luaSection) string {
		switch s.Kind {
		case "global":
			return `VirtualHost "*" -- global options`
		case "component":
			return "Component " + luaQuote(s.Name) + " " + luaQuote(s.Module)
		}
		return "VirtualHost " + luaQuote(s.Name)
	}
	label := func(s *luaSection, k string) string {
		if s.Kind == "global" {
			return k
		}
		return header(s) + ": " + k
	}
	for _, hs := range host.Sections {
		os := out.section(hs.Name)
		var lines []string
		if os == nil || os.Kind != hs.Kind && !(hs.Kind == "global") {
			if len(hs.Opts) == 0 && hs.Kind == "host" {
				lines = append(lines, "")
			}
			reason := "a section the spec does not describe"
			for _, k := range hs.Order {
				reason = keptReason(k, reason)
			}
			fs = append(fs, Finding{File: file, Line: hs.Line, Kind: KindKept, Setting: header(hs), Reason: reason})
			for _, k := range hs.Order {
				if hs.Kind == "component" && (k == "component_module" || k == "load_global_modules") {
					continue
				}
				lines = append(lines, "    "+k+" = "+luaLiteral(hs.Opts[k].Value))
			}
			writeSection(&extra, header(hs), lines)
			continue
		}
		if hs.Kind == "component" && os.Module != hs.Module {
			fs = append(fs, Finding{File: file, Line: hs.Line, Kind: KindChanged, Setting: header(hs), Old: hs.Module, New: os.Module, Reason: reasonDerived})
		}
		for _, k := range hs.Order {
			ho := hs.Opts[k]
			oo, ok := os.Opts[k]
			hv := luaLiteral(ho.Value)
			switch {
			case ok && luaLiteral(oo.Value) == hv:
			case !ok:
				fs = append(fs, Finding{File: file, Line: ho.Line, Kind: KindKept, Setting: label(hs, k), Old: mask(k, hv), Reason: keptReason(k, "no spec attribute")})
				lines = append(lines, "    "+k+" = "+hv)
			case k == "modules_enabled":
				hm, _ := toStrings(ho.Value)
				om, _ := toStrings(oo.Value)
				var missing []string
				for _, m := range hm {
					if !slices.Contains(om, m) {
						missing = append(missing, m)
						fs = append(fs, Finding{File: file, Line: ho.Line, Kind: KindKept, Setting: label(hs, "module "+m), Reason: moduleReason(m)})
					}
				}
				for _, m := range om {
					if !slices.Contains(hm, m) {
						fs = append(fs, Finding{File: file, Line: ho.Line, Kind: KindAdded, Setting: label(hs, "module "+m), New: m, Reason: reasonDerived})
					}
				}
				if len(missing) > 0 {
					// appended to the template's list (extra.prosody_modules)
					mods[hs.Name] = missing
				}
			default:
				fs = append(fs, Finding{File: file, Line: ho.Line, Kind: KindChanged, Setting: label(hs, k), Old: mask(k, hv), New: mask(k, luaLiteral(oo.Value)), Reason: reasonDerived})
			}
		}
		if len(lines) > 0 {
			writeSection(&extra, header(hs), lines)
		}
	}
	for _, os := range out.Sections {
		hs := host.section(os.Name)
		if hs == nil {
			fs = append(fs, Finding{File: file, Kind: KindAdded, Setting: header(os), Reason: reasonDerived})
			continue
		}
		for _, k := range os.Order {
			if _, ok := hs.Opts[k]; !ok {
				if os.Kind == "component" && (k == "component_module" || k == "load_global_modules") {
					continue
				}
				fs = append(fs, Finding{File: file, Kind: KindAdded, Setting: label(os, k), New: mask(k, luaLiteral(os.Opts[k].Value)), Reason: reasonDerived})
			}
		}
	}
	for _, inc := range host.Includes {
		fs = append(fs, Finding{File: file, Line: inc.Line, Kind: KindRemoved, Setting: inc.Text, Reason: "jitsi-agent does not follow includes; inline the included settings in extra.prosody"})
	}
	if !keep {
		return fs, "", nil
	}
	if len(mods) == 0 {
		mods = nil
	}
	return fs, extra.String(), mods
}

func writeSection(b *strings.Builder, header string, lines []string) {
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	b.WriteString(header + "\n")
	for _, l := range lines {
		if l != "" {
			b.WriteString(l + "\n")
		}
	}
}

// moduleReason explains a kept module; some are the trace of a spec block
// whose settings live outside Jitsi's files.
func moduleReason(m string) string {
	if m == "muc_size" {
		return "a module the spec does not load; jitsi-agent loads mod_muc_size for the join endpoint: add your token_api block (its keys are not in any Jitsi file) and drop this extra"
	}
	return "a module the spec does not load"
}

// ---- HOCON ----

func compareHOCON(file string, host, out *hoconDoc) ([]Finding, string) {
	var fs []Finding
	var extra strings.Builder
	for _, p := range host.Order {
		hl := host.Leaves[p]
		ol, ok := out.Leaves[p]
		hv := hoconLiteral(normHOCON(hl.Value))
		switch {
		case ok && hoconLiteral(normHOCON(ol.Value)) == hv:
		case !ok && !coveredByArray(out, p):
			fs = append(fs, Finding{File: file, Line: hl.Line, Kind: KindKept, Setting: p, Old: mask(p, hv), Reason: keptReason(p, "no spec attribute")})
			fmt.Fprintf(&extra, "%s = %s\n", p, hoconLiteral(hl.Value))
		case !ok:
			fs = append(fs, Finding{File: file, Line: hl.Line, Kind: KindRemoved, Setting: p, Old: mask(p, hv), Reason: reasonDerived})
		default:
			fs = append(fs, Finding{File: file, Line: hl.Line, Kind: KindChanged, Setting: p, Old: mask(p, hv), New: mask(p, hoconLiteral(normHOCON(ol.Value))), Reason: reasonDerived})
		}
	}
	for _, p := range out.Order {
		if _, ok := host.Leaves[p]; !ok {
			fs = append(fs, Finding{File: file, Kind: KindAdded, Setting: p, New: mask(p, hoconLiteral(normHOCON(out.Leaves[p].Value))), Reason: reasonDerived})
		}
	}
	return fs, extra.String()
}

// coveredByArray: a path under a leaf that is a parent in the other doc.
func coveredByArray(d *hoconDoc, p string) bool {
	for q := range d.Leaves {
		if strings.HasPrefix(p, q+".") || strings.HasPrefix(q, p+".") {
			return true
		}
	}
	return false
}

// normHOCON makes numbers comparable (5222 and "5222" differ in HOCON
// only in type; the services read both with getInt).
func normHOCON(v any) any {
	switch t := v.(type) {
	case int64:
		return fmt.Sprint(t)
	case float64:
		return fmt.Sprint(t)
	case bool:
		return fmt.Sprint(t)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = normHOCON(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = normHOCON(e)
		}
		return out
	}
	return v
}

// ---- config.js ----

func compareConfigJS(file string, host, out *jsConfig) ([]Finding, string) {
	var fs []Finding
	var extra strings.Builder
	hl, ol := host.leaves(), out.leaves()
	created := map[string]bool{}
	for _, p := range sortedKeys(hl) {
		hv := jsonLiteral(hl[p])
		ov, ok := ol[p]
		switch {
		case ok && jsonLiteral(ov) == hv:
		case !ok && !jsCovered(ol, p):
			fs = append(fs, Finding{File: file, Line: host.line(p), Kind: KindKept, Setting: p, Old: mask(p, hv), Reason: keptReason(p, "no spec attribute")})
			parts := strings.Split(p, ".")
			for i := 1; i < len(parts); i++ {
				anc := strings.Join(parts[:i], ".")
				if _, exists := out.get(anc); !exists && !created[anc] {
					fmt.Fprintf(&extra, "%s = {};\n", jsRef(parts[:i]))
					created[anc] = true
				}
			}
			fmt.Fprintf(&extra, "%s = %s;\n", jsRef(parts), hv)
		case !ok:
			fs = append(fs, Finding{File: file, Line: host.line(p), Kind: KindRemoved, Setting: p, Old: mask(p, hv), Reason: reasonDerived})
		default:
			fs = append(fs, Finding{File: file, Line: host.line(p), Kind: KindChanged, Setting: p, Old: mask(p, hv), New: mask(p, jsonLiteral(ov)), Reason: reasonDerived})
		}
	}
	for _, p := range sortedKeys(ol) {
		if _, ok := hl[p]; !ok && !jsCovered(hl, p) {
			fs = append(fs, Finding{File: file, Kind: KindAdded, Setting: p, New: mask(p, jsonLiteral(ol[p])), Reason: reasonDerived})
		}
	}
	return fs, extra.String()
}

func jsCovered(leaves map[string]any, p string) bool {
	for q := range leaves {
		if strings.HasPrefix(p, q+".") || strings.HasPrefix(q, p+".") {
			return true
		}
	}
	return false
}

var jsIdent = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*$`) }) // compiled on first use, not at every start

func jsRef(parts []string) string {
	var b strings.Builder
	b.WriteString("config")
	for _, p := range parts {
		if jsIdent().MatchString(p) {
			b.WriteString("." + p)
		} else {
			b.WriteString("[" + jsonLiteral(p) + "]")
		}
	}
	return b.String()
}

// ---- nginx ----

// repeatable directives are identified by their arguments; the others by
// name (or name and first argument for named blocks).
var ngxRepeatable = map[string]bool{"listen": true, "add_header": true, "set": true, "proxy_set_header": true,
	"include": true, "ssl_certificate": true, "ssl_certificate_key": true, "rewrite": true, "if": true,
	"location": true, "error_page": true, "server": true}
var ngxNamed = map[string]bool{"map": true, "upstream": true, "log_format": true, "geo": true, "split_clients": true, "limit_req_zone": true, "limit_conn_zone": true}

func ngxKey(d *ngxDirective) string {
	switch {
	case ngxRepeatable[d.Name]:
		return d.signature()
	case ngxNamed[d.Name]:
		return d.Name + " " + d.arg(0)
	}
	return d.Name
}

func serverKey(f *ngxFile, s *ngxDirective) string {
	if s == f.tlsServer() {
		return "server (https)"
	}
	if s == f.plainServer() {
		return "server (http)"
	}
	return "server " + ngxKey(s.first("listen"))
}

func ngxIndex(f *ngxFile, list []*ngxDirective, top bool) map[string]*ngxDirective {
	m := map[string]*ngxDirective{}
	for _, d := range list {
		k := ngxKey(d)
		if top && d.Name == "server" {
			k = serverKey(f, d)
		}
		if _, dup := m[k]; !dup {
			m[k] = d
		}
	}
	return m
}

func compareNginx(file string, host, out *ngxFile) ([]Finding, string, string) {
	var fs []Finding
	var httpExtra, serverExtra strings.Builder
	var walk func(ctx string, hl, ol []*ngxDirective, top, tlsServer bool)
	walk = func(ctx string, hl, ol []*ngxDirective, top, tlsServer bool) {
		hi, oi := ngxIndex(host, hl, top), ngxIndex(out, ol, top)
		label := func(k string) string {
			if ctx == "" {
				return k
			}
			return ctx + " > " + k
		}
		for _, d := range hl {
			k := ngxKey(d)
			if top && d.Name == "server" {
				k = serverKey(host, d)
			}
			if hi[k] != d {
				continue // duplicate; nginx would have refused or used the first
			}
			o, ok := oi[k]
			switch {
			case ok && d.Block != nil && o.Block != nil:
				if !slices.Equal(d.Args, o.Args) {
					fs = append(fs, Finding{File: file, Line: d.Line, Kind: KindChanged, Setting: label(d.signature()), Old: strings.Join(d.Args, " "), New: strings.Join(o.Args, " "), Reason: reasonDerived})
				}
				walk(label(k), d.Block, o.Block, false, top && k == "server (https)")
			case ok && d.signature() == o.signature() && (d.Block == nil) == (o.Block == nil):
			case ok:
				fs = append(fs, Finding{File: file, Line: d.Line, Kind: KindChanged, Setting: label(d.Name), Old: mask(d.Name, strings.Join(d.Args, " ")), New: mask(d.Name, strings.Join(o.Args, " ")), Reason: reasonDerived})
			case !utf8.ValidString(host.text(d)):
				fs = append(fs, Finding{File: file, Line: d.Line, Kind: KindRemoved, Setting: label(d.signature()), Reason: "not valid UTF-8 text, so it cannot be kept in the spec; rewrite it in extra.nginx"})
			case top && d.Name != "server":
				fs = append(fs, Finding{File: file, Line: d.Line, Kind: KindKept, Setting: label(d.signature()), Reason: "no spec attribute"})
				httpExtra.WriteString(dedent(host.text(d)) + "\n")
			case tlsServer:
				fs = append(fs, Finding{File: file, Line: d.Line, Kind: KindKept, Setting: label(d.signature()), Reason: "no spec attribute"})
				serverExtra.WriteString(indent(dedent(host.text(d)), "    ") + "\n")
			default:
				fs = append(fs, Finding{File: file, Line: d.Line, Kind: KindRemoved, Setting: label(d.signature()), Reason: "jitsi-agent writes this block itself; extra.nginx_server keeps only HTTPS server directives"})
			}
		}
		for _, o := range ol {
			k := ngxKey(o)
			if top && o.Name == "server" {
				k = serverKey(out, o)
			}
			if _, ok := hi[k]; !ok {
				fs = append(fs, Finding{File: file, Kind: KindAdded, Setting: label(o.signature()), Reason: reasonDerived})
			}
		}
	}
	walk("", host.Top, out.Top, true, false)
	return fs, httpExtra.String(), serverExtra.String()
}

func dedent(s string) string {
	lines := strings.Split(s, "\n")
	min := -1
	for i, l := range lines {
		if i == 0 || strings.TrimSpace(l) == "" {
			continue
		}
		n := len(l) - len(strings.TrimLeft(l, " \t"))
		if min < 0 || n < min {
			min = n
		}
	}
	first := strings.TrimLeft(lines[0], " \t")
	firstIndent := len(lines[0]) - len(first)
	if min < 0 || firstIndent < min {
		min = firstIndent
	}
	for i, l := range lines {
		if len(l) >= min && strings.TrimSpace(l[:min]) == "" {
			lines[i] = l[min:]
		} else {
			lines[i] = strings.TrimLeft(l, " \t")
		}
	}
	return strings.Join(lines, "\n")
}

func indent(s, by string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = by + l
		}
	}
	return strings.Join(lines, "\n")
}

// ---- coturn ----

var coturnRepeatable = map[string]bool{"denied-peer-ip": true, "allowed-peer-ip": true, "external-ip": true,
	"listening-ip": true, "relay-ip": true, "user": true}

// coturnObsolete: options current coturn refuses at start-up.
var coturnObsolete = map[string]string{
	"no-loopback-peers": "coturn 4.6 refuses it (\"Bad configuration format\"); loopback peers are denied by default",
}

func coturnKey(e lineEntry) string {
	if coturnRepeatable[e.Key] {
		return e.Key + "=" + e.Value
	}
	return e.Key
}

func compareLines(file string, host, out *lineFile, obsolete map[string]string, repeatKey func(lineEntry) string) ([]Finding, string) {
	var fs []Finding
	var extra strings.Builder
	oi := map[string]lineEntry{}
	for _, e := range out.Entries {
		oi[repeatKey(e)] = e
	}
	hi := map[string]bool{}
	for _, e := range host.Entries {
		k := repeatKey(e)
		if hi[k] {
			continue
		}
		hi[k] = true
		o, ok := oi[k]
		switch {
		case ok && o.Value == e.Value && o.Flag == e.Flag:
		case ok:
			fs = append(fs, Finding{File: file, Line: e.Line, Kind: KindChanged, Setting: e.Key, Old: mask(e.Key, e.Value), New: mask(e.Key, o.Value), Reason: reasonDerived})
		case !utf8.ValidString(e.Text):
			fs = append(fs, Finding{File: file, Line: e.Line, Kind: KindRemoved, Setting: e.Key, Reason: "not valid UTF-8 text, so it cannot be kept in the spec"})
		case obsolete[e.Key] != "":
			fs = append(fs, Finding{File: file, Line: e.Line, Kind: KindRemoved, Setting: e.Key, Old: mask(e.Key, e.Value), Reason: obsolete[e.Key]})
		case coturnRepeatable[e.Key] && anyKey(out, e.Key):
			fs = append(fs, Finding{File: file, Line: e.Line, Kind: KindRemoved, Setting: e.Key, Old: mask(e.Key, e.Value), Reason: reasonDerived})
		default:
			fs = append(fs, Finding{File: file, Line: e.Line, Kind: KindKept, Setting: e.Key, Old: mask(e.Key, e.Value), Reason: keptReason(e.Key, "no spec attribute")})
			extra.WriteString(strings.TrimSpace(e.Text) + "\n")
		}
	}
	for _, e := range out.Entries {
		if !hi[repeatKey(e)] {
			fs = append(fs, Finding{File: file, Kind: KindAdded, Setting: e.Key, New: mask(e.Key, e.Value), Reason: reasonDerived})
		}
	}
	return fs, extra.String()
}

func anyKey(f *lineFile, k string) bool {
	for _, e := range f.Entries {
		if e.Key == k {
			return true
		}
	}
	return false
}
