// Package render turns a validated spec.Deployment into the complete desired
// state of one host: every Jitsi configuration file (and Debian's conf.d /
// sites-enabled links) as a render.Set.
//
// Render is pure: it reads templates from the fs.FS it is given and the user
// template sources from memory, and does no other I/O (no os, exec, network
// or clock). The caller loads templates (package templates) and secrets.
package render

import (
	"bytes"
	"fmt"
	"io/fs"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"text/template"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Input is everything Render needs.
type Input struct {
	// Deployment is the validated deployment, with Secrets filled in.
	Deployment *spec.Deployment
	// Templates holds the built-in template files by name (see package
	// templates: templates.Overlay(d.TemplatesDir)).
	Templates fs.FS
	// UserSources maps a user template's name (d.Templates[i].Name) to its
	// source text (templates.ReadUserSources).
	UserSources map[string][]byte
}

// builtin describes one built-in output.
type builtin struct {
	tmpl      string // template file name
	component string
	path      string // absolute destination; DOMAIN substituted
	link      string // optional symlink path pointing at path
	linkText  string // the link's target text
	mode      fs.FileMode
	owner     string
	group     string
	sensitive bool // holds a secret
	noUnits   bool // read per request; no reload needed
	when      func(b *BuiltinData) bool
}

// Built-in template names.
const (
	TmplProsody   = "prosody.cfg.lua.tmpl"
	TmplJicofo    = "jicofo.conf.tmpl"
	TmplJVB       = "jvb.conf.tmpl"
	TmplJVBLegacy = "jvb-sip-communicator.properties.tmpl"
	TmplConfigJS  = "config.js.tmpl"
	TmplNginx     = "nginx-site.conf.tmpl"
	TmplTURN      = "turnserver.conf.tmpl"
)

func builtins(domain string) []builtin {
	return []builtin{
		{
			tmpl: TmplProsody, component: spec.Prosody,
			path:     "/etc/prosody/conf.avail/" + domain + ".cfg.lua",
			link:     "/etc/prosody/conf.d/" + domain + ".cfg.lua",
			linkText: "../conf.avail/" + domain + ".cfg.lua",
			mode:     0o640, owner: "root", group: "prosody", sensitive: true,
		},
		{
			tmpl: TmplJicofo, component: spec.Jicofo,
			path: "/etc/jitsi/jicofo/jicofo.conf",
			mode: 0o640, owner: "jicofo", group: "jitsi", sensitive: true,
		},
		{
			tmpl: TmplJVB, component: spec.JVB,
			path: "/etc/jitsi/videobridge/jvb.conf",
			mode: 0o640, owner: "jvb", group: "jitsi", sensitive: true,
		},
		{
			tmpl: TmplJVBLegacy, component: spec.JVB,
			path: "/etc/jitsi/videobridge/sip-communicator.properties",
			mode: 0o640, owner: "jvb", group: "jitsi",
		},
		{
			// Served by nginx (with SSI) on every request: no reload.
			tmpl: TmplConfigJS, component: spec.Nginx,
			path: "/etc/jitsi/meet/" + domain + "-config.js",
			mode: 0o644, owner: "root", group: "root", noUnits: true,
		},
		{
			tmpl: TmplNginx, component: spec.Nginx,
			path:     "/etc/nginx/sites-available/" + domain + ".conf",
			link:     "/etc/nginx/sites-enabled/" + domain + ".conf",
			linkText: "../sites-available/" + domain + ".conf",
			mode:     0o644, owner: "root", group: "root",
		},
		{
			// coturn reads /etc/turnserver.conf; the file itself lives in
			// /etc/coturn so the hardened daemon (ProtectSystem=strict, /etc
			// read-only except its ReadWritePaths) can replace it atomically
			// through the link, as it does for conf.d and sites-enabled.
			tmpl: TmplTURN, component: spec.Coturn,
			path:     "/etc/coturn/turnserver.conf",
			link:     "/etc/turnserver.conf",
			linkText: "coturn/turnserver.conf",
			mode:     0o640, owner: "root", group: "turnserver", sensitive: true,
			when: func(b *BuiltinData) bool { return b.TURN },
		},
	}
}

// Render renders the desired state of the deployment's selected host: the
// built-in files of every component in d.Host.Roles, then the user
// templates. The result is sorted by path, with Redact = d.SecretValues().
func Render(in Input) (*Set, error) {
	d := in.Deployment
	if d == nil {
		return nil, fmt.Errorf("render: no deployment")
	}
	if in.Templates == nil {
		return nil, fmt.Errorf("render: no template file system")
	}
	data, err := newBuiltinData(d)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	// Every quoted form of every secret: a Lua- or JSON-escaped secret must
	// be redacted (and make its file sensitive) like the raw value.
	secrets := redactionList(d.SecretValues())
	set := &Set{Redact: secrets}

	var buf bytes.Buffer
	for _, b := range builtins(d.Domain) {
		if !d.Host.HasRole(b.component) {
			continue
		}
		if b.when != nil && !b.when(data) {
			continue
		}
		if err := checkSecrets(b, data); err != nil {
			return nil, fmt.Errorf("render %s: %w", b.path, err)
		}
		src, err := fs.ReadFile(in.Templates, b.tmpl)
		if err != nil {
			return nil, fmt.Errorf("render %s: reading template %s: %w", b.path, b.tmpl, err)
		}
		t, err := parseCached("builtin:"+b.tmpl, b.tmpl, src)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", b.path, err)
		}
		buf.Reset()
		if err := t.Execute(&buf, data); err != nil {
			return nil, fmt.Errorf("render %s: %w", b.path, err)
		}
		svc := d.Services[b.component]
		var units []string
		if svc.Unit != "" && !b.noUnits {
			units = []string{svc.Unit}
		}
		content := bytes.Clone(buf.Bytes())
		set.Files = append(set.Files, File{
			Path:      b.path,
			Kind:      KindFile,
			Content:   content,
			Mode:      b.mode,
			Owner:     b.owner,
			Group:     b.group,
			Component: b.component,
			Units:     units,
			Sensitive: b.sensitive || containsAny(content, secrets),
			Drift:     svc.Drift,
		})
		if b.link != "" {
			set.Files = append(set.Files, File{
				Path:      b.link,
				Kind:      KindSymlink,
				Target:    b.linkText,
				Component: b.component,
				Units:     units,
				Drift:     svc.Drift,
			})
		}
	}

	for _, ut := range d.Templates {
		f, err := renderUser(d, ut, in.UserSources, secrets, &buf)
		if err != nil {
			return nil, err
		}
		set.Files = append(set.Files, f)
	}

	set.Sort()
	for i := 1; i < len(set.Files); i++ {
		if set.Files[i].Path == set.Files[i-1].Path {
			return nil, fmt.Errorf("render: two outputs write %s (%s and %s)",
				set.Files[i].Path, set.Files[i-1].Component, set.Files[i].Component)
		}
	}
	return set, nil
}

// checkSecrets refuses to render a file whose secret was never loaded: an
// empty password would otherwise be written and lock the component out.
func checkSecrets(b builtin, data *BuiltinData) error {
	need := map[string][]struct{ name, v string }{
		TmplProsody: {{"auth.jwt app_secret", data.AppSecret}, {"TURN secret", data.TURNSecret}},
		TmplJicofo:  {{"focus password", data.FocusPassword}},
		TmplJVB:     {{"jvb password", data.JVBPassword}},
		TmplTURN:    {{"TURN secret", data.TURNSecret}},
	}
	for _, s := range need[b.tmpl] {
		if s.v != "" {
			continue
		}
		switch {
		case s.name == "auth.jwt app_secret" && !data.JWT,
			s.name == "TURN secret" && !data.TURN:
			continue
		}
		return fmt.Errorf("%s is empty (secrets not loaded)", s.name)
	}
	return nil
}

func renderUser(d *spec.Deployment, ut spec.Template, sources map[string][]byte, secrets []string, buf *bytes.Buffer) (File, error) {
	where := fmt.Sprintf("template %q (%s)", ut.Name, ut.Source)
	src, ok := sources[ut.Name]
	if !ok {
		return File{}, fmt.Errorf("%s: source not loaded", where)
	}
	if !strings.HasPrefix(ut.Destination, "/") {
		return File{}, fmt.Errorf("%s: destination %q is not absolute", where, ut.Destination)
	}
	t, err := parseCached("user:"+ut.Name, ut.Name, src)
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", where, err)
	}
	buf.Reset()
	if err := t.Execute(buf, newTemplateData(d, ut.Name)); err != nil {
		return File{}, fmt.Errorf("%s: %w%s", where, err, fieldHint(err))
	}
	content := bytes.Clone(buf.Bytes())
	mode := fs.FileMode(ut.Mode) & fs.ModePerm
	if ut.Mode == 0 {
		mode = 0o644
	}
	units := append([]string(nil), ut.Notify...)
	return File{
		Path:      ut.Destination,
		Kind:      KindFile,
		Content:   content,
		Mode:      mode,
		Owner:     ut.Owner,
		Group:     ut.Group,
		Component: "template:" + ut.Name,
		Units:     units,
		Sensitive: containsAny(content, secrets),
		Check:     ut.Check,
		Drift:     ut.Drift,
	}, nil
}

// parsed caches parsed templates by slot (one per built-in and per user
// template name) together with the source they came from, so repeated
// renders of unchanged templates skip parsing. A changed source replaces
// its slot, so the cache never grows beyond the number of templates. A
// parsed template is safe for concurrent Execute.
var parsed = struct {
	sync.Mutex
	m map[string]parsedTemplate
}{m: map[string]parsedTemplate{}}

type parsedTemplate struct {
	src string
	t   *template.Template
}

func parseCached(slot, name string, src []byte) (*template.Template, error) {
	parsed.Lock()
	p, ok := parsed.m[slot]
	parsed.Unlock()
	if ok && p.src == string(src) {
		return p.t, nil
	}
	t, err := template.New(name).Funcs(funcMap).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, err
	}
	parsed.Lock()
	parsed.m[slot] = parsedTemplate{src: string(src), t: t}
	parsed.Unlock()
	return t, nil
}

func containsAny(b []byte, secrets []string) bool {
	for _, s := range secrets {
		if s != "" && bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

var unknownField = regexp.MustCompile(`can't evaluate field (\w+) in type`)

// fieldHint turns "can't evaluate field AppId" into a did-you-mean and the
// list of fields a user template may use.
func fieldHint(err error) string {
	m := unknownField.FindStringSubmatch(err.Error())
	if m == nil {
		return ""
	}
	t := reflect.TypeOf(TemplateData{})
	names := make([]string, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		names = append(names, t.Field(i).Name)
	}
	hint := ""
	if s := spec.Suggest(m[1], names); s != "" {
		hint = fmt.Sprintf(" Did you mean .%s?", s)
	}
	return fmt.Sprintf(".%s Fields: .%s (docs/spec.md, template data).", hint, strings.Join(names, " ."))
}
