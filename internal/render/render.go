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
	"slices"
	"strings"
	"sync"
	"text/template"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/membership"
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
	// Cache keeps parsed templates between renders (a long-running caller
	// such as the daemon owns one); nil parses every template each time.
	Cache *Cache
	// Members is the live membership of the fleet (fleet mode builds it
	// from the hosts' registrations); nil derives it from the spec's host
	// blocks (membership.FromDeployment), so a single-host or static spec
	// renders as without it. The files that follow it: nginx's colibri-ws
	// routes (every bridge of this host's shard in the view, unhealthy ones
	// too: their running conferences need the route), Prosody's TURN list
	// (the healthy coturn members of the shard, see turnServers) and the
	// front's HAProxy shards and colibri-ws paths (frontShards,
	// frontBridges).
	Members *membership.View
}

// Built-in template names (the files table, internal/files, names them).
const (
	TmplProsody   = "prosody.cfg.lua.tmpl"
	TmplJicofo    = "jicofo.conf.tmpl"
	TmplJVB       = "jvb.conf.tmpl"
	TmplJVBLegacy = "jvb-sip-communicator.properties.tmpl"
	TmplConfigJS  = "config.js.tmpl"
	TmplNginx     = "nginx-site.conf.tmpl"
	TmplTURN      = "turnserver.conf.tmpl"
)

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
	data, err := newBuiltinData(d, in.Members)
	if err != nil {
		return nil, fmt.Errorf("render: %w", err)
	}
	// Every quoted form of every secret: a Lua- or JSON-escaped secret must
	// be redacted (and make its file sensitive) like the raw value.
	secrets := redactionList(d.SecretValues())
	set := &Set{Redact: secrets}

	var buf bytes.Buffer
	for _, b := range files.Table() {
		if b.Component != files.Firewall && !d.Host.HasRole(b.Component) || !d.Feature(b.When) {
			continue
		}
		path := files.Expand(b.Path, d.Domain)
		if err := checkSecrets(b, data); err != nil {
			return nil, fmt.Errorf("render %s: %w", path, err)
		}
		src, err := fs.ReadFile(in.Templates, b.Template)
		if err != nil {
			return nil, fmt.Errorf("render %s: reading template %s: %w", path, b.Template, err)
		}
		t, err := in.Cache.parse("builtin:"+b.Template, b.Template, src)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", path, err)
		}
		buf.Reset()
		if err := t.Execute(&buf, data); err != nil {
			return nil, fmt.Errorf("render %s: %w", path, err)
		}
		svc := d.Services[b.Component]
		var units []string
		if svc.Unit != "" && b.Reload == files.ReloadUnit {
			units = []string{svc.Unit}
		}
		content := bytes.Clone(buf.Bytes())
		set.Files = append(set.Files, File{
			Path:       path,
			Kind:       KindFile,
			Content:    content,
			Mode:       b.Mode,
			Owner:      b.Owner,
			Group:      b.Group,
			Component:  b.Component,
			Units:      units,
			Sensitive:  b.Sensitive || containsAny(content, secrets),
			Drift:      svc.Drift,
			Validators: slices.Clone(b.Validators),
		})
		if b.Link != "" {
			set.Files = append(set.Files, File{
				Path:      files.Expand(b.Link, d.Domain),
				Kind:      KindSymlink,
				Target:    files.Expand(b.LinkText, d.Domain),
				Component: b.Component,
				Units:     units,
				Drift:     svc.Drift,
			})
		}
	}

	for _, ut := range d.Templates {
		f, err := renderUser(d, ut, in.UserSources, in.Cache, secrets, &buf)
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
func checkSecrets(b files.File, data *BuiltinData) error {
	for _, name := range b.Secrets {
		v, needed := secretValue(name, data)
		if needed && v == "" {
			return fmt.Errorf("%s is empty (secrets not loaded)", name)
		}
	}
	return nil
}

// secretValue is a table secret's value and whether this deployment needs
// it at all.
func secretValue(name files.Secret, data *BuiltinData) (string, bool) {
	switch name {
	case files.AppSecret:
		return data.AppSecret, data.JWT
	case files.TURNSecret:
		return data.TURNSecret, data.TURN
	}
	if a, ok := files.AccountOf(name); ok {
		return data.Passwords[a.Name], true
	}
	return "", true // an unknown secret is never loaded
}

func renderUser(d *spec.Deployment, ut spec.Template, sources map[string][]byte, cache *Cache, secrets []string, buf *bytes.Buffer) (File, error) {
	where := fmt.Sprintf("template %q (%s)", ut.Name, ut.Source)
	src, ok := sources[ut.Name]
	if !ok {
		return File{}, fmt.Errorf("%s: source not loaded", where)
	}
	if !strings.HasPrefix(ut.Destination, "/") {
		return File{}, fmt.Errorf("%s: destination %q is not absolute", where, ut.Destination)
	}
	t, err := cache.parse("user:"+ut.Name, ut.Name, src)
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", where, err)
	}
	buf.Reset()
	td := newTemplateData(d, ut.Name)
	td.budget = &budget{steps: MaxTemplateSteps}
	if err := t.Execute(&limitedWriter{buf: buf, limit: MaxTemplateOutput}, &td); err != nil {
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

// Cache keeps parsed templates by slot (one per built-in and per user
// template name) together with the source they came from, so repeated
// renders of unchanged templates skip parsing. A changed source replaces
// its slot, so the cache never grows beyond the number of templates. A
// parsed template is safe for concurrent Execute; a Cache is safe for
// concurrent use. The zero value is ready to use.
type Cache struct {
	mu sync.Mutex
	m  map[string]parsedTemplate
}

type parsedTemplate struct {
	src string
	t   *template.Template
}

// parse returns the parsed template of slot, parsing src when the cache
// (which may be nil) has no template for exactly this source.
func (c *Cache) parse(slot, name string, src []byte) (*template.Template, error) {
	if c != nil {
		c.mu.Lock()
		p, ok := c.m[slot]
		c.mu.Unlock()
		if ok && p.src == string(src) {
			return p.t, nil
		}
	}
	t, err := template.New(name).Funcs(funcMap).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(slot, "user:") {
		if err := instrument(t); err != nil {
			return nil, err
		}
	}
	if c != nil {
		c.mu.Lock()
		if c.m == nil {
			c.m = map[string]parsedTemplate{}
		}
		c.m[slot] = parsedTemplate{src: string(src), t: t}
		c.mu.Unlock()
	}
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

var unknownField = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`can't evaluate field (\w+) in type`) }) // compiled on first use, not at every start

// fieldHint turns "can't evaluate field AppId" into a did-you-mean and the
// list of fields a user template may use.
func fieldHint(err error) string {
	m := unknownField().FindStringSubmatch(err.Error())
	if m == nil {
		return ""
	}
	t := reflect.TypeOf(TemplateData{})
	names := make([]string, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).IsExported() {
			names = append(names, t.Field(i).Name)
		}
	}
	hint := ""
	if s := spec.Suggest(m[1], names); s != "" {
		hint = fmt.Sprintf(" Did you mean .%s?", s)
	}
	return fmt.Sprintf(".%s Fields: .%s (docs/spec.md, template data).", hint, strings.Join(names, " ."))
}
