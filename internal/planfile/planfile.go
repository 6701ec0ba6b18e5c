// Package planfile saves a plan for a later `apply PLANFILE`, Terraform
// style. A saved plan is not the rendered files: it is the recipe (spec
// path, host, -var and -var-file flags, root) and fingerprints of
// everything the result depends on: every input file the spec read, every
// environment variable it looked up, the agent's version, and the host's
// managed files and state. Apply re-renders from the recipe and refuses,
// naming what differs, unless every fingerprint still matches, so what it
// writes is what the plan showed.
//
// The file holds no secret in clear: environment values and file contents
// are SHA-256 digests. -var values are kept as given (apply needs them), so
// the file is written 0600.
package planfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
)

// FormatVersion is the saved-plan format; its JSON key marks a plan file.
const FormatVersion = 1

const marker = `"jitsi_agent_saved_plan"`

// MaxSize bounds a plan file.
const MaxSize = 8 << 20

// Change is one planned change, for display when the plan is applied.
type Change struct {
	Action string `json:"action"`
	Path   string `json:"path"`
}

// Recipe is how to render the plan again.
type Recipe struct {
	Spec     string            `json:"spec"` // absolute
	Host     string            `json:"host,omitempty"`
	Vars     map[string]string `json:"vars,omitempty"`
	VarFiles []string          `json:"var_files,omitempty"` // absolute
	Root     string            `json:"root"`
}

// Fingerprint is what the rendered result depends on. Every map is
// name -> SHA-256 hex (or a marker such as "absent").
type Fingerprint struct {
	AgentVersion string            `json:"agent_version"`
	Inputs       map[string]string `json:"inputs"`
	Env          map[string]string `json:"env"`
	HostFiles    map[string]string `json:"host_files"`
}

// Plan is a saved plan.
type Plan struct {
	Format  int       `json:"jitsi_agent_saved_plan"`
	Created time.Time `json:"created"`
	Recipe
	Fingerprint
	Changes []Change `json:"changes"`
}

// Write saves p to path, mode 0600, atomically.
func Write(path string, p *Plan) error {
	p.Format = FormatVersion
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if err := fsys.WriteAtomic(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write plan %s: %w", path, err)
	}
	return nil
}

// Is reports whether path is a saved plan (not a spec): a JSON file that
// carries the saved-plan marker near its start.
func Is(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 256)
	n, _ := io.ReadFull(f, head)
	head = bytes.TrimSpace(head[:n])
	return bytes.HasPrefix(head, []byte("{")) && bytes.Contains(head, []byte(marker))
}

// Read loads a saved plan.
func Read(path string) (*Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read plan %s: %w", path, err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("plan %s is larger than %d MiB", path, MaxSize>>20)
	}
	var p Plan
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("plan %s: %w", path, err)
	}
	if p.Format != FormatVersion {
		return nil, fmt.Errorf("plan %s has format %d; this jitsi-agent reads format %d (run plan -out again)", path, p.Format, FormatVersion)
	}
	if p.Spec == "" || p.Root == "" {
		return nil, fmt.Errorf("plan %s names no spec or root", path)
	}
	return &p, nil
}

// EnvRecorder wraps an environment lookup and remembers every variable
// asked for (as a digest of its value): pass Lookup as spec.Options.LookupEnv.
type EnvRecorder struct {
	Env func(string) (string, bool) // nil = os.LookupEnv
	mu  sync.Mutex
	got map[string]string
}

// Lookup looks name up and records it.
func (r *EnvRecorder) Lookup(name string) (string, bool) {
	env := r.Env
	if env == nil {
		env = os.LookupEnv
	}
	v, ok := env(name)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string]string{}
	}
	r.got[name] = "unset"
	if ok {
		r.got[name] = digest([]byte(v))
	}
	return v, ok
}

// Digests returns what was recorded.
func (r *EnvRecorder) Digests() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string, len(r.got))
	for k, v := range r.got {
		out[k] = v
	}
	return out
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// maxDigestFile bounds what is read to fingerprint one file.
const maxDigestFile = 64 << 20

// fileState fingerprints one path without following a final symlink:
// "absent", "link:TARGET", "dir", or "file:MODE:UID:GID:SHA256".
func fileState(p string) (string, error) {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "absent", nil
	}
	if err != nil {
		return "", err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		return "link:" + t, nil
	case fi.IsDir():
		return "dir", nil
	case !fi.Mode().IsRegular():
		return "special:" + fi.Mode().Type().String(), nil
	}
	if fi.Size() > maxDigestFile {
		return "", fmt.Errorf("%s is larger than %d MiB", p, maxDigestFile>>20)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	uid, gid := -1, -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid, gid = int(st.Uid), int(st.Gid)
	}
	return fmt.Sprintf("file:%o:%d:%d:%s", fi.Mode().Perm(), uid, gid, digest(b)), nil
}

// Inputs fingerprints the spec's input files; a directory input (a
// templates_dir) is fingerprinted by the names and contents of its files.
func Inputs(paths []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err == nil && fi.IsDir() {
			ents, err := os.ReadDir(p)
			if err != nil {
				return nil, err
			}
			h := sha256.New()
			for _, e := range ents {
				st, err := fileState(filepath.Join(p, e.Name()))
				if err != nil {
					return nil, err
				}
				fmt.Fprintf(h, "%s\x00%s\x00", e.Name(), st)
			}
			out[p] = "dir:" + hex.EncodeToString(h.Sum(nil))
			continue
		}
		st, err := fileState(p)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", p, err)
		}
		out[p] = st
	}
	return out, nil
}

// NoopStamp is the file name, in the state directory, of the no-op apply
// stamp (internal/stamp). It is a cache of this fingerprint, not state:
// HostFiles leaves it out.
const NoopStamp = "noop-stamp.json"

// HostFiles fingerprints the files HostPaths lists.
func HostFiles(root string, managed []string, stateDir string) (map[string]string, error) {
	paths, err := HostPaths(root, managed, stateDir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(paths))
	for _, p := range paths {
		st, err := fileState(p.Abs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Key, err)
		}
		out[p.Key] = st
	}
	return out, nil
}

// HostPath is one file a plan depends on: Key is its path as under /, Abs
// where it is under root.
type HostPath struct{ Key, Abs string }

// HostPaths lists the files a plan depends on on the host: the managed
// paths (as under /) and the state directory's files, except backups and
// the lock, which only apply itself changes along with the manifest, and
// the no-op stamp. A missing state directory is one path (which reads as
// absent). internal/stamp fingerprints the same list.
func HostPaths(root string, managed []string, stateDir string) ([]HostPath, error) {
	out := make([]HostPath, 0, len(managed)+8)
	for _, p := range managed {
		out = append(out, HostPath{Key: p, Abs: filepath.Join(root, p)})
	}
	sd := filepath.Join(root, stateDir)
	err := filepath.WalkDir(sd, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == sd {
			out = append(out, HostPath{Key: stateDir, Abs: sd})
			return filepath.SkipAll
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(sd, p)
		if d.IsDir() && rel == "backups" {
			return filepath.SkipDir
		}
		if d.IsDir() || rel == "lock" || rel == NoopStamp {
			return nil
		}
		out = append(out, HostPath{Key: filepath.Join(stateDir, rel), Abs: p})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	return out, nil
}

// Stale compares the plan's fingerprint with now's and returns why they
// differ, one sentence per difference (at most a few per kind), or nil.
func (p *Plan) Stale(now Fingerprint) []string {
	var why []string
	if p.AgentVersion != now.AgentVersion {
		why = append(why, fmt.Sprintf("the plan was made by jitsi-agent %s, this is %s", p.AgentVersion, now.AgentVersion))
	}
	why = append(why, diff("spec input", p.Inputs, now.Inputs, "changed")...)
	why = append(why, diff("environment variable", p.Env, now.Env, "has a different value")...)
	why = append(why, diff("host file", p.HostFiles, now.HostFiles, "changed on the host")...)
	return why
}

func diff(what string, was, now map[string]string, verb string) []string {
	keys := map[string]bool{}
	for k := range was {
		keys[k] = true
	}
	for k := range now {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var out []string
	for _, k := range names {
		a, inA := was[k]
		b, inB := now[k]
		switch {
		case inA && inB && a == b:
			continue
		case !inA:
			out = append(out, fmt.Sprintf("%s %s is new since the plan", what, k))
		case !inB:
			out = append(out, fmt.Sprintf("%s %s is no longer used", what, k))
		case a == "absent" || a == "unset":
			out = append(out, fmt.Sprintf("%s %s appeared", what, k))
		case b == "absent" || b == "unset":
			out = append(out, fmt.Sprintf("%s %s disappeared", what, k))
		default:
			out = append(out, fmt.Sprintf("%s %s %s", what, k, verb))
		}
	}
	const most = 5
	if len(out) > most {
		out = append(out[:most], fmt.Sprintf("and %d more %ss", len(out)-most, what))
	}
	return out
}

// Summary is "3 to create, 1 to update" for the changes.
func Summary(ch []Change) string {
	count := map[string]int{}
	var order []string
	for _, c := range ch {
		if count[c.Action] == 0 {
			order = append(order, c.Action)
		}
		count[c.Action]++
	}
	slices.Sort(order)
	parts := make([]string, len(order))
	for i, a := range order {
		parts[i] = fmt.Sprintf("%d %s", count[a], a)
	}
	if len(parts) == 0 {
		return "no file changes"
	}
	return strings.Join(parts, ", ")
}
