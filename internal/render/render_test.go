package render

import (
	"bytes"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/templates"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// renderCombo renders one matrix entry with the built-in templates.
func renderCombo(t testing.TB, c combo) (*spec.Deployment, *Set) {
	t.Helper()
	d := newDeployment(c.mods...)
	set, err := Render(Input{Deployment: d, Templates: templates.Builtin, UserSources: userSources})
	if err != nil {
		t.Fatalf("%s: Render: %v", c.name, err)
	}
	return d, set
}

// manifest describes every entry's metadata, one line each, for the golden
// MANIFEST file.
func manifest(set *Set) []byte {
	var b bytes.Buffer
	for _, f := range set.Files {
		fmt.Fprintf(&b, "%s kind=%s", f.Path, f.Kind)
		if f.Kind == KindSymlink {
			fmt.Fprintf(&b, " target=%s", f.Target)
		} else {
			fmt.Fprintf(&b, " mode=%04o owner=%s group=%s", f.Mode, f.Owner, f.Group)
		}
		fmt.Fprintf(&b, " component=%s units=%s sensitive=%t", f.Component, strings.Join(f.Units, ","), f.Sensitive)
		if f.Check != "" {
			fmt.Fprintf(&b, " check=%q", f.Check)
		}
		if f.Drift != "" {
			fmt.Fprintf(&b, " drift=%s", f.Drift)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	for _, c := range matrix {
		t.Run(c.name, func(t *testing.T) {
			_, set := renderCombo(t, c)
			dir := filepath.Join("testdata", "golden", c.name)
			want := map[string][]byte{"MANIFEST": manifest(set)}
			for _, f := range set.Files {
				if f.Kind == KindFile {
					want[strings.TrimPrefix(f.Path, "/")] = f.Content
				}
			}
			if *update {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				for rel, content := range want {
					p := filepath.Join(dir, filepath.FromSlash(rel))
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(p, content, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				return
			}
			got := map[string]bool{}
			err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
				if err != nil || e.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(dir, p)
				got[filepath.ToSlash(rel)] = true
				return nil
			})
			if err != nil {
				t.Fatalf("reading golden dir (run go test ./internal/render -update): %v", err)
			}
			for rel, content := range want {
				if !got[rel] {
					t.Errorf("%s: no golden file (run go test ./internal/render -update)", rel)
					continue
				}
				g, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(rel)))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(g, content) {
					t.Errorf("%s differs from golden file (run go test ./internal/render -update and review the diff):\n%s", rel, firstDiff(g, content))
				}
			}
			for rel := range got {
				if _, ok := want[rel]; !ok {
					t.Errorf("stale golden file %s (run -update)", rel)
				}
			}
		})
	}
}

// firstDiff shows the first differing line.
func firstDiff(want, got []byte) string {
	wl := strings.Split(string(want), "\n")
	gl := strings.Split(string(got), "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n  golden: %q\n  render: %q", i+1, w, g)
		}
	}
	return "(no line differs)"
}

func TestRenderDeterministicAndSorted(t *testing.T) {
	for _, c := range matrix {
		_, a := renderCombo(t, c)
		_, b := renderCombo(t, c)
		if !bytes.Equal(manifest(a), manifest(b)) {
			t.Errorf("%s: manifest differs between renders", c.name)
		}
		for i := range a.Files {
			if !bytes.Equal(a.Files[i].Content, b.Files[i].Content) {
				t.Errorf("%s: %s differs between renders", c.name, a.Files[i].Path)
			}
		}
		if !sort.SliceIsSorted(a.Files, func(i, j int) bool { return a.Files[i].Path < a.Files[j].Path }) {
			t.Errorf("%s: files not sorted", c.name)
		}
	}
}

func TestRenderFilesAndMetadata(t *testing.T) {
	d, set := renderCombo(t, combo{name: "default"})
	want := map[string]struct {
		kind      Kind
		mode      fs.FileMode
		owner     string
		group     string
		component string
		units     string
		sensitive bool
		target    string
	}{
		"/etc/prosody/conf.avail/meet.example.com.cfg.lua":   {KindFile, 0o640, "root", "prosody", "prosody", "prosody.service", true, ""},
		"/etc/prosody/conf.d/meet.example.com.cfg.lua":       {KindSymlink, 0, "", "", "prosody", "prosody.service", false, "../conf.avail/meet.example.com.cfg.lua"},
		"/etc/jitsi/jicofo/jicofo.conf":                      {KindFile, 0o640, "jicofo", "jitsi", "jicofo", "jicofo.service", true, ""},
		"/etc/jitsi/videobridge/jvb.conf":                    {KindFile, 0o640, "jvb", "jitsi", "jvb", "jitsi-videobridge2.service", true, ""},
		"/etc/jitsi/videobridge/sip-communicator.properties": {KindFile, 0o640, "jvb", "jitsi", "jvb", "jitsi-videobridge2.service", false, ""},
		"/etc/jitsi/meet/meet.example.com-config.js":         {KindFile, 0o644, "root", "root", "nginx", "", false, ""},
		"/etc/nginx/sites-available/meet.example.com.conf":   {KindFile, 0o644, "root", "root", "nginx", "nginx.service", false, ""},
		"/etc/nginx/sites-enabled/meet.example.com.conf":     {KindSymlink, 0, "", "", "nginx", "nginx.service", false, "../sites-available/meet.example.com.conf"},
		"/etc/coturn/turnserver.conf":                        {KindFile, 0o640, "root", "turnserver", "coturn", "coturn.service", true, ""},
		"/etc/turnserver.conf":                               {KindSymlink, 0, "", "", "coturn", "coturn.service", false, "coturn/turnserver.conf"},
	}
	if len(set.Files) != len(want) {
		t.Errorf("got %d files, want %d:\n%s", len(set.Files), len(want), manifest(set))
	}
	for p, w := range want {
		f, ok := set.Lookup(p)
		if !ok {
			t.Errorf("missing %s", p)
			continue
		}
		if f.Kind != w.kind || f.Mode != w.mode || f.Owner != w.owner || f.Group != w.group ||
			f.Component != w.component || strings.Join(f.Units, ",") != w.units || f.Sensitive != w.sensitive || f.Target != w.target {
			t.Errorf("%s: got %+v", p, manifest(&Set{Files: []File{f}}))
		}
	}
	if len(set.Redact) == 0 {
		t.Errorf("Redact is empty")
	}
	for _, v := range d.SecretValues() {
		for _, f := range RedactionForms(v) {
			if !slices.Contains(set.Redact, f) {
				t.Errorf("Redact lacks a form of a secret (%d chars)", len(f))
			}
		}
	}
	// Files that must not hold secrets do not.
	for _, f := range set.Files {
		if f.Sensitive {
			continue
		}
		for _, s := range set.Redact {
			if bytes.Contains(f.Content, []byte(s)) {
				t.Errorf("%s holds a secret but is not marked sensitive", f.Path)
			}
		}
	}
}

func TestRolesLimitFiles(t *testing.T) {
	_, set := renderCombo(t, combo{"jvb", []func(*spec.Deployment){roles("bridge7", spec.JVB)}})
	var paths []string
	for _, f := range set.Files {
		paths = append(paths, f.Path)
		if f.Component != spec.JVB {
			t.Errorf("jvb-only host renders %s (%s)", f.Path, f.Component)
		}
	}
	if len(paths) != 2 {
		t.Errorf("jvb-only host: %v", paths)
	}
	jvb, _ := set.Lookup("/etc/jitsi/videobridge/jvb.conf")
	if !bytes.Contains(jvb.Content, []byte(`HOSTNAME = "xmpp1"`)) {
		t.Errorf("jvb on a separate host must connect to the prosody host:\n%s", jvb.Content)
	}
	_, set = renderCombo(t, combo{"noturn", []func(*spec.Deployment){noTURN}})
	if _, ok := set.Lookup("/etc/turnserver.conf"); ok {
		t.Error("turnserver.conf rendered with TURN off")
	}
}

func TestRemovedModulesNeverRendered(t *testing.T) {
	removed := []string{
		`"speakerstats";`, `"av_moderation";`, `"end_conference";`, `"room_metadata";`,
		"speakerstats_component =", "av_moderation_component =", "end_conference_component =",
		"conference_duration_component", "conferenceduration.", "poltergeist",
		"no-loopback-peers", "org.jitsi.videobridge.xmpp.user", "videobridge.ice.tcp",
		"meet-jit-si-turnrelay.jitsi.net", "fileRecordingsEnabled", "enableUserRolesBasedOnToken",
	}
	for _, c := range matrix {
		_, set := renderCombo(t, c)
		for _, f := range set.Files {
			for _, r := range removed {
				if bytes.Contains(f.Content, []byte(r)) {
					t.Errorf("%s %s contains removed/deprecated %q", c.name, f.Path, r)
				}
			}
		}
	}
}

func TestDebianMarkers(t *testing.T) {
	for _, c := range matrix {
		d, set := renderCombo(t, c)
		if f, ok := set.Lookup("/etc/prosody/conf.avail/" + d.Domain + ".cfg.lua"); ok {
			s := string(f.Content)
			for _, m := range []string{
				"component_admins_as_room_owners = ", "unlimited_jids", `--"polls";`,
				`Component "polls.` + d.Domain + `"`, "internal.auth." + d.Domain,
				`Component "focus.` + d.Domain + `" "client_proxy"`,
				"-- do not delete me",
			} {
				if !strings.Contains(s, m) {
					t.Errorf("%s: prosody file lacks marker %q", c.name, m)
				}
			}
			if d.Auth.Mode == spec.AuthJWT && !strings.Contains(s, `authentication = "token" -- do not delete me`) {
				t.Errorf("%s: token marker missing", c.name)
			}
			// restrict_room_creation within 2 lines after the conference MUC.
			lines := strings.Split(s, "\n")
			found := false
			for i, l := range lines {
				if l == `Component "conference.`+d.Domain+`" "muc"` {
					found = i+1 < len(lines) && strings.Contains(lines[i+1]+lines[i+2], "restrict_room_creation")
				}
			}
			if !found {
				t.Errorf("%s: restrict_room_creation not right after the conference MUC", c.name)
			}
		}
		if f, ok := set.Lookup("/etc/coturn/turnserver.conf"); ok {
			if !bytes.HasPrefix(f.Content, []byte("# jitsi-meet coturn config. Do not modify this line\n")) {
				t.Errorf("%s: coturn marker is not the first line", c.name)
			}
		}
	}
}
