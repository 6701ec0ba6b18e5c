package plan

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/deferred"
	"github.com/jitsi-agent/jitsi-agent/internal/diff"
	"github.com/jitsi-agent/jitsi-agent/internal/files"
	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
	"github.com/jitsi-agent/jitsi-agent/internal/manifest"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

// FormatVersion is the version of the JSON report.
const FormatVersion = 1

// Marker is the managed-by marker looked for in file contents.
const Marker = "jitsi-agent"

// Action is what apply does at a path.
type Action string

// Actions.
const (
	ActionCreate   Action = "create"
	ActionUpdate   Action = "update"
	ActionMode     Action = "mode"
	ActionOwner    Action = "owner"
	ActionSymlink  Action = "symlink"
	ActionUnmanage Action = "unmanage"
	// ActionRestore and ActionRemove appear only in rollback results.
	ActionRestore Action = "restore"
	ActionRemove  Action = "remove"
)

// Reason says why a change is needed.
type Reason string

// Reasons (see the package documentation).
const (
	ReasonNew             Reason = "new"
	ReasonSpecChanged     Reason = "spec-changed"
	ReasonDrift           Reason = "drift"
	ReasonMissing         Reason = "missing"
	ReasonPackageReplaced Reason = "package-replaced"
	ReasonMode            Reason = "mode"
	ReasonOwner           Reason = "owner"
	ReasonSymlinkPlanted  Reason = "symlink-planted"
	ReasonRemovedFromSpec Reason = "removed-from-spec"
	// ReasonRollback labels rollback results.
	ReasonRollback Reason = "rollback"
	// ReasonInterrupted labels files an earlier, interrupted operation
	// swapped whose units were never confirmed reloaded (the apply
	// journal): they are reloaded again.
	ReasonInterrupted Reason = "interrupted"
)

// Transition is an attribute's old and new value.
type Transition struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Change is one pending change.
type Change struct {
	Path        string      `json:"path"`
	WritePath   string      `json:"write_path,omitempty"`
	Action      Action      `json:"action"`
	Reason      Reason      `json:"reason"`
	Kind        render.Kind `json:"kind"`
	Component   string      `json:"component,omitempty"`
	Units       []string    `json:"units,omitempty"`
	Sensitive   bool        `json:"sensitive,omitempty"`
	HostChanged bool        `json:"host_changed"`
	Mode        *Transition `json:"mode,omitempty"`
	Owner       *Transition `json:"owner,omitempty"`
	Target      *Transition `json:"target,omitempty"`
	Detail      string      `json:"detail,omitempty"`
	Diff        string      `json:"diff,omitempty"`

	// For apply (not reported).

	// File is the desired entry (zero for unmanage).
	File render.File `json:"-"`
	// FileMode is the normalised desired mode.
	FileMode fs.FileMode `json:"-"`
	// UID/GID to set (-1 = leave as it comes).
	UID int `json:"-"`
	GID int `json:"-"`
	// HostExists is whether something exists at the write path.
	HostExists bool `json:"-"`
}

// Dest returns where apply writes: WritePath or Path.
func (c *Change) Dest() string {
	if c.WritePath != "" {
		return c.WritePath
	}
	return c.Path
}

// Summary counts changes per action.
type Summary struct {
	Create   int `json:"create"`
	Update   int `json:"update"`
	Mode     int `json:"mode"`
	Owner    int `json:"owner"`
	Symlink  int `json:"symlink"`
	Unmanage int `json:"unmanage"`
	Total    int `json:"total"`
}

// Plan is the result of Compute.
type Plan struct {
	FormatVersion int      `json:"format_version"`
	Root          string   `json:"root"`
	Serial        int      `json:"serial"`
	Changes       []Change `json:"changes"`
	Summary       Summary  `json:"summary"`
	Units         []string `json:"units"`
	Notices       []string `json:"notices"`
	// PendingRestarts are restarts earlier applies deferred (restart =
	// "defer"); they count as pending changes. Filled by the caller from the
	// systemd package's record.
	PendingRestarts []deferred.Restart `json:"pending_restarts"`
	// Live says what the changes will do to running services beyond a
	// unit reload (e.g. Prosody hosts activated, modules reloaded, or a
	// restart that ends every session). Filled by the caller.
	Live []LiveEffect `json:"live,omitempty"`

	// Desired is the manifest entry of every desired path as it will be
	// recorded after a successful apply (serial/time not set).
	Desired []manifest.Entry `json:"-"`
	// ManifestStale is true when the host already matches but the manifest
	// record differs (apply then only rewrites the manifest).
	ManifestStale bool `json:"-"`
}

// LiveEffect is what applying the plan does to one running service.
type LiveEffect struct {
	Unit string `json:"unit"`
	// Effect is "live" (no session ends), "restart" (every session ends)
	// or "deferred-restart" (restart = "defer": recorded, run by apply
	// --restart-deferred; the running service keeps the old config).
	Effect string `json:"effect"`
	// Steps are the individual steps, one line each.
	Steps []string `json:"steps"`
}

// HasChanges reports whether apply would change the host.
func (p *Plan) HasChanges() bool { return len(p.Changes) > 0 }

// ExitCode is 0 without changes and 2 with changes (or deferred restarts)
// pending.
func (p *Plan) ExitCode() int {
	if p.HasChanges() || len(p.PendingRestarts) > 0 {
		return 2
	}
	return 0
}

// HostChanged lists the paths changed on the host outside jitsi-agent.
func (p *Plan) HostChanged() []string {
	var out []string
	for _, c := range p.Changes {
		if c.HostChanged {
			out = append(out, c.Path)
		}
	}
	return out
}

// Options configure Compute.
type Options struct {
	Host     fsys.Host
	Manifest *manifest.Manifest // nil = never applied
	// Redact lists secret values replaced by "(sensitive)" in diffs.
	Redact []string
	// Mask, when set, hides secrets the host had before (the secret value
	// history, internal/secrets.History): a removed line may carry a secret
	// the spec no longer knows. It is applied to every diff line.
	Mask func(string) string
	// Diff computes unified diffs (plan output); apply leaves it off.
	Diff bool
	// Context is the number of diff context lines (default 3).
	Context int
}

// Redacted is the text that replaces secret values.
const Redacted = "(sensitive)"

// DebianLinkDirs maps Debian's "enabled" link directories to the directory
// their links point into; managed files are written through such links.
var DebianLinkDirs = map[string]string{
	"/etc/prosody/conf.d":      "/etc/prosody/conf.avail",
	"/etc/nginx/sites-enabled": "/etc/nginx/sites-available",
}

// allowedDirLinks are directory symlinks accepted in a managed path's
// parents (merged /usr and /var/run).
var allowedDirLinks = map[string][]string{
	"/bin": {"usr/bin", "/usr/bin"}, "/sbin": {"usr/sbin", "/usr/sbin"},
	"/lib": {"usr/lib", "/usr/lib"}, "/lib32": {"usr/lib32", "/usr/lib32"},
	"/lib64": {"usr/lib64", "/usr/lib64"}, "/libx32": {"usr/libx32", "/usr/libx32"},
	"/var/run": {"/run", "../run"}, "/var/lock": {"/run/lock", "../run/lock"},
}

type computer struct {
	opt      Options
	h        fsys.Host
	m        *manifest.Manifest
	desired  map[string]bool
	dirs     map[string]error
	red      *strings.Replacer
	dpkg     map[string][]string
	dpkgRead bool
	p        *Plan
}

// Compute plans the changes that bring the host to set.
func Compute(set *render.Set, opt Options) (*Plan, error) {
	if opt.Host == nil {
		return nil, errors.New("plan: no host")
	}
	if opt.Context <= 0 {
		opt.Context = 3
	}
	m := opt.Manifest
	if m == nil {
		m = manifest.New()
	}
	c := &computer{
		opt: opt, h: opt.Host, m: m,
		desired: make(map[string]bool, len(set.Files)),
		dirs:    map[string]error{},
		red:     NewRedactor(opt.Redact),
		p: &Plan{
			FormatVersion: FormatVersion, Root: opt.Host.Root(), Serial: m.Serial,
			Changes: []Change{}, Units: []string{}, Notices: []string{}, PendingRestarts: []deferred.Restart{},
		},
	}
	for _, f := range set.Files {
		p := path.Clean(f.Path)
		if !path.IsAbs(f.Path) || p != f.Path {
			return nil, fmt.Errorf("plan: desired path %q is not a clean absolute path", f.Path)
		}
		if c.desired[p] {
			return nil, fmt.Errorf("plan: %s appears twice in the desired set", p)
		}
		c.desired[p] = true
	}
	files := append([]render.File(nil), set.Files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	for _, f := range files {
		var err error
		switch f.Kind {
		case render.KindFile, "":
			err = c.file(f)
		case render.KindSymlink:
			err = c.symlink(f)
		default:
			err = fmt.Errorf("unknown kind %q", f.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("plan %s: %w", f.Path, err)
		}
	}
	for _, e := range m.Files {
		if c.desired[e.Path] {
			continue
		}
		c.p.Changes = append(c.p.Changes, Change{
			Path: e.Path, Action: ActionUnmanage, Reason: ReasonRemovedFromSpec,
			Kind: render.Kind(e.Kind), Component: e.Component,
			Detail: "no longer in the spec: left in place, no longer managed", UID: -1, GID: -1,
		})
	}
	c.finish()
	return c.p, nil
}

func (c *computer) finish() {
	p := c.p
	rank := func(a Action) int {
		switch a {
		case ActionSymlink:
			return 1
		case ActionUnmanage:
			return 2
		}
		return 0
	}
	sort.SliceStable(p.Changes, func(i, j int) bool {
		ri, rj := rank(p.Changes[i].Action), rank(p.Changes[j].Action)
		if ri != rj {
			return ri < rj
		}
		return p.Changes[i].Path < p.Changes[j].Path
	})
	for i := range p.Changes {
		ch := &p.Changes[i]
		switch ch.Action {
		case ActionCreate:
			p.Summary.Create++
		case ActionUpdate:
			p.Summary.Update++
		case ActionMode:
			p.Summary.Mode++
		case ActionOwner:
			p.Summary.Owner++
		case ActionSymlink:
			p.Summary.Symlink++
		case ActionUnmanage:
			p.Summary.Unmanage++
		}
	}
	p.Summary.Total = len(p.Changes)
	p.Units = Units(p.Changes)
	// Manifest freshness: same entries in the same order (both sorted).
	if len(p.Desired) != len(c.m.Files) {
		p.ManifestStale = true
	} else {
		for i := range p.Desired {
			if !p.Desired[i].SameState(c.m.Files[i]) {
				p.ManifestStale = true
				break
			}
		}
	}
}

// Units returns the union of the changes' units: built-in components in
// reload order (prosody, jicofo, jvb, nginx, coturn), then template and
// other components by name; within a component in order of appearance.
func Units(changes []Change) []string {
	type item struct {
		rank int
		comp string
		seq  int
		unit string
	}
	seen := map[string]bool{}
	var items []item
	for i, ch := range changes {
		if ch.Action == ActionUnmanage {
			continue
		}
		r := files.Rank(ch.Component)
		if r > files.Rank("template:") {
			r = files.Rank("template:") // other components sort by name with templates
		}
		for _, u := range ch.Units {
			if u == "" || seen[u] {
				continue
			}
			seen[u] = true
			items = append(items, item{r, ch.Component, i, u})
		}
	}
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.rank != b.rank {
			return a.rank < b.rank
		}
		if a.comp != b.comp {
			return a.comp < b.comp
		}
		return a.seq < b.seq
	})
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it.unit)
	}
	return out
}

// NormMode returns the permission bits of a desired file (0644 when unset).
// Unix-style special bits (0o4000...) are converted to Go's mode bits.
func NormMode(m fs.FileMode) fs.FileMode {
	special := m & (fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if raw := uint32(m) & 0o7000; raw != 0 {
		special |= manifest.FromUnixMode(raw)
	}
	perm := m & fs.ModePerm
	if perm == 0 && special == 0 {
		return 0o644
	}
	return perm | special
}

// checkParents refuses symlinked parent directories of p.
func (c *computer) checkParents(p string) error {
	dir := path.Dir(p)
	if dir == "/" {
		return nil
	}
	if err, ok := c.dirs[dir]; ok {
		return err
	}
	err := c.checkParents(dir)
	if err == nil {
		fi, e := c.h.Lstat(dir)
		switch {
		case e != nil && errors.Is(e, fs.ErrNotExist):
		case e != nil:
			err = fmt.Errorf("parent %s: %w", dir, e)
		case fi.Mode()&fs.ModeSymlink != 0:
			t, _ := c.h.Readlink(dir)
			ok := false
			for _, a := range allowedDirLinks[dir] {
				ok = ok || t == a
			}
			if !ok {
				err = fmt.Errorf("refusing to write under %s: it is a symlink (to %s); jitsi-agent only follows the Debian conf.d/sites-enabled file links", dir, t)
			}
		case !fi.IsDir():
			err = fmt.Errorf("parent %s is not a directory", dir)
		}
	}
	c.dirs[dir] = err
	return err
}

type ownerWant struct {
	uid, gid int // -1: not managed
}

func (c *computer) ownerOf(f render.File) ownerWant {
	w := ownerWant{-1, -1}
	if f.Owner != "" {
		if id, err := c.h.LookupUser(f.Owner); err == nil {
			w.uid = id
		} else {
			c.notice("%s: owner %s does not exist on this host; ownership left unchanged", f.Path, f.Owner)
		}
	}
	if f.Group != "" {
		if id, err := c.h.LookupGroup(f.Group); err == nil {
			w.gid = id
		} else {
			c.notice("%s: group %s does not exist on this host; group left unchanged", f.Path, f.Group)
		}
	}
	return w
}

func (c *computer) notice(format string, args ...any) {
	c.p.Notices = append(c.p.Notices, fmt.Sprintf(format, args...))
}

func (c *computer) ownerString(uid, gid int) string {
	return c.h.UserName(uid) + ":" + c.h.GroupName(gid)
}

// resultOwner is the owner a path has after apply. write says whether the
// file is (re)written through a new temp file.
func (c *computer) resultOwner(w ownerWant, write bool, hostUID, hostGID int, hostExists bool) (int, int) {
	uid, gid := c.h.Euid(), c.h.Egid()
	if !write && hostExists {
		uid, gid = hostUID, hostGID
	}
	if c.h.CanChown() {
		if write && hostExists {
			uid, gid = hostUID, hostGID // keep the existing owner
		}
		if w.uid >= 0 {
			uid = w.uid
		}
		if w.gid >= 0 {
			gid = w.gid
		}
	}
	return uid, gid
}

func (c *computer) file(f render.File) error {
	p := f.Path
	if err := c.checkParents(p); err != nil {
		return err
	}
	mode := NormMode(f.Mode)
	want := c.ownerOf(f)
	e, applied := c.m.Lookup(p)
	sum := fsys.SHA256(f.Content)
	ch := Change{
		Path: p, Kind: render.KindFile, Component: f.Component, Units: f.Units,
		Sensitive: f.Sensitive, File: f, FileMode: mode, UID: -1, GID: -1,
	}
	entry := manifest.Entry{
		Path: p, Kind: string(render.KindFile), SHA256: sum, Size: int64(len(f.Content)),
		Mode: manifest.ModeString(mode), Marker: bytes.Contains(f.Content, []byte(Marker)),
		Component: f.Component, Units: f.Units,
	}
	dest := p
	fi, err := c.h.Lstat(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	exists := err == nil
	planted := ""
	if exists && fi.Mode()&fs.ModeSymlink != 0 {
		if wt, ok := c.writeThrough(p); ok {
			dest = wt
			ch.WritePath, entry.WritePath = wt, wt
			fi, err = c.h.Lstat(wt)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			exists = err == nil
		} else {
			planted, _ = c.h.Readlink(p)
		}
	}
	if exists && planted == "" && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is a %s, not a regular file; remove it or change the spec", dest, kindName(fi))
	}
	var hostUID, hostGID int
	var hostMode fs.FileMode
	if exists && planted == "" {
		hostUID, hostGID = fsys.Owner(fi)
		hostMode = fsys.Perm(fi)
	}
	hostExists := exists && planted == ""
	ch.HostExists = exists

	var host []byte
	contentDiffers := true
	if hostExists {
		host, err = c.h.ReadFile(dest)
		if err != nil {
			return err
		}
		contentDiffers = !bytes.Equal(host, f.Content)
	}
	write := contentDiffers || planted != ""
	uid, gid := c.resultOwner(want, write, hostUID, hostGID, hostExists)
	entry.Owner, entry.Group = c.h.UserName(uid), c.h.GroupName(gid)
	c.p.Desired = append(c.p.Desired, entry)
	if c.h.CanChown() {
		if write && hostExists {
			ch.UID, ch.GID = hostUID, hostGID // keep the owner unless the spec sets one
		}
		if want.uid >= 0 {
			ch.UID = want.uid
		}
		if want.gid >= 0 {
			ch.GID = want.gid
		}
	} else if (want.uid >= 0 && want.uid != uid) || (want.gid >= 0 && want.gid != gid) {
		c.notice("%s: ownership %s:%s not applied (not running as root); it is %s", p, orDash(f.Owner), orDash(f.Group), c.ownerString(uid, gid))
	}

	hostSum := ""
	if hostExists {
		hostSum = fsys.SHA256(host)
	}
	if applied {
		switch {
		case planted != "" || !exists:
			ch.HostChanged = true
		case e.Kind != string(render.KindFile) || e.SHA256 != hostSum || e.Mode != manifest.ModeString(hostMode) ||
			e.Owner != c.h.UserName(hostUID) || e.Group != c.h.GroupName(hostGID):
			ch.HostChanged = true
		}
	}

	switch {
	case planted != "":
		ch.Action, ch.Reason = ActionUpdate, ReasonSymlinkPlanted
		ch.Detail = fmt.Sprintf("symlink to %s sits where a regular file belongs; it is not followed: apply replaces the link with the file", planted)
		ch.Mode = &Transition{From: "symlink", To: manifest.ModeString(mode)}
		c.addDiff(&ch, "", f.Content, "/dev/null")
	case !exists:
		ch.Action, ch.Reason = ActionCreate, ReasonNew
		if applied {
			ch.Reason = ReasonMissing
			ch.Detail = "applied before (serial " + fmt.Sprint(e.Serial) + ") and gone from the host"
		}
		c.addDiff(&ch, "", f.Content, "/dev/null")
	case contentDiffers:
		ch.Action = ActionUpdate
		ch.Reason = c.classify(e, applied, dest, host, hostSum)
		c.addDiff(&ch, string(host), f.Content, "")
	}
	if ch.Action != "" {
		if hostExists && hostMode != mode {
			ch.Mode = &Transition{From: manifest.ModeString(hostMode), To: manifest.ModeString(mode)}
		}
		if hostExists && c.h.CanChown() && (hostUID != uid || hostGID != gid) {
			ch.Owner = &Transition{From: c.ownerString(hostUID, hostGID), To: c.ownerString(uid, gid)}
		}
		c.p.Changes = append(c.p.Changes, ch)
		return nil
	}
	// Content equal: attributes only.
	if hostMode != mode {
		mc := ch
		mc.Action, mc.Reason = ActionMode, ReasonMode
		mc.Mode = &Transition{From: manifest.ModeString(hostMode), To: manifest.ModeString(mode)}
		mc.UID, mc.GID = -1, -1
		c.p.Changes = append(c.p.Changes, mc)
	}
	if c.h.CanChown() && ((want.uid >= 0 && want.uid != hostUID) || (want.gid >= 0 && want.gid != hostGID)) {
		oc := ch
		oc.Action, oc.Reason = ActionOwner, ReasonOwner
		oc.Owner = &Transition{From: c.ownerString(hostUID, hostGID), To: c.ownerString(uid, gid)}
		oc.UID, oc.GID = want.uid, want.gid
		c.p.Changes = append(c.p.Changes, oc)
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func kindName(fi fs.FileInfo) string {
	switch {
	case fi.IsDir():
		return "directory"
	case fi.Mode()&fs.ModeSymlink != 0:
		return "symlink"
	case fi.Mode()&fs.ModeNamedPipe != 0:
		return "named pipe"
	case fi.Mode()&fs.ModeSocket != 0:
		return "socket"
	case fi.Mode()&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// classify labels a content difference on an existing regular file.
func (c *computer) classify(e manifest.Entry, applied bool, dest string, host []byte, hostSum string) Reason {
	if !applied {
		return ReasonNew
	}
	if e.Kind == string(render.KindFile) && e.SHA256 == hostSum {
		return ReasonSpecChanged
	}
	if c.packageReplaced(e, dest, host) {
		return ReasonPackageReplaced
	}
	return ReasonDrift
}

func (c *computer) packageReplaced(e manifest.Entry, dest string, host []byte) bool {
	if e.Marker && !bytes.Contains(host, []byte(Marker)) {
		return true
	}
	if sums := c.conffiles()[dest]; len(sums) > 0 {
		h := md5.Sum(host)
		hs := hex.EncodeToString(h[:])
		for _, s := range sums {
			if s == hs {
				return true
			}
		}
	}
	for _, suf := range []string{".dpkg-old", ".dpkg-bak", ".ucf-old"} {
		if b, err := c.h.ReadFile(dest + suf); err == nil && fsys.SHA256(b) == e.SHA256 {
			return true
		}
	}
	return false
}

// conffiles reads dpkg's conffile md5s once (path -> md5s).
func (c *computer) conffiles() map[string][]string {
	if c.dpkgRead {
		return c.dpkg
	}
	c.dpkgRead = true
	c.dpkg = map[string][]string{}
	b, err := c.h.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		return c.dpkg
	}
	ParseConffiles(b, c.dpkg)
	return c.dpkg
}

// ParseConffiles adds the "Conffiles:" entries of a dpkg status file to out.
func ParseConffiles(status []byte, out map[string][]string) {
	in := false
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "Conffiles:") {
			in = true
			continue
		}
		if !strings.HasPrefix(line, " ") {
			in = false
			continue
		}
		if in {
			fs := strings.Fields(line)
			if len(fs) >= 2 && strings.HasPrefix(fs[0], "/") {
				out[fs[0]] = append(out[fs[0]], fs[1])
			}
		}
	}
}

// writeThrough returns the file a managed path's Debian link points at, when
// following it is allowed.
func (c *computer) writeThrough(p string) (string, bool) {
	pair, ok := DebianLinkDirs[path.Dir(p)]
	if !ok {
		return "", false
	}
	t, err := c.h.Readlink(p)
	if err != nil {
		return "", false
	}
	res := t
	if !path.IsAbs(t) {
		res = path.Join(path.Dir(p), t)
	}
	res = path.Clean(res)
	if path.Dir(res) != pair || c.desired[res] {
		return "", false
	}
	if err := c.checkParents(res); err != nil {
		return "", false
	}
	fi, err := c.h.Lstat(res)
	if err != nil {
		return res, errors.Is(err, fs.ErrNotExist)
	}
	return res, fi.Mode().IsRegular()
}

// sameLink reports whether two link texts at p resolve to the same path.
func sameLink(p, a, b string) bool {
	if a == b {
		return true
	}
	res := func(t string) string {
		if path.IsAbs(t) {
			return path.Clean(t)
		}
		return path.Join(path.Dir(p), t)
	}
	return res(a) == res(b)
}

func (c *computer) symlink(f render.File) error {
	p := f.Path
	if f.Target == "" {
		return errors.New("symlink without a target")
	}
	if err := c.checkParents(p); err != nil {
		return err
	}
	e, applied := c.m.Lookup(p)
	c.p.Desired = append(c.p.Desired, manifest.Entry{
		Path: p, Kind: string(render.KindSymlink), Target: f.Target, Component: f.Component, Units: f.Units,
	})
	ch := Change{
		Path: p, Kind: render.KindSymlink, Component: f.Component, Units: f.Units,
		File: f, UID: -1, GID: -1,
	}
	fi, err := c.h.Lstat(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err != nil {
		ch.Action, ch.Reason = ActionCreate, ReasonNew
		if applied {
			ch.Reason, ch.HostChanged = ReasonMissing, true
		}
		ch.Target = &Transition{From: "", To: f.Target}
		c.p.Changes = append(c.p.Changes, ch)
		return nil
	}
	ch.HostExists = true
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		cur, err := c.h.Readlink(p)
		if err != nil {
			return err
		}
		if sameLink(p, cur, f.Target) {
			return nil
		}
		ch.Action, ch.Target = ActionSymlink, &Transition{From: cur, To: f.Target}
		switch {
		case !applied:
			ch.Reason = ReasonNew
		case e.Kind == string(render.KindSymlink) && sameLink(p, e.Target, cur):
			ch.Reason = ReasonSpecChanged
		default:
			ch.Reason, ch.HostChanged = ReasonDrift, true
		}
	case fi.Mode().IsRegular():
		ch.Action, ch.Target = ActionSymlink, &Transition{From: "(regular file)", To: f.Target}
		ch.Detail = "a regular file sits where the link belongs; apply backs it up and replaces it with the link"
		ch.Reason = ReasonNew
		if applied {
			ch.Reason, ch.HostChanged = ReasonDrift, true
		}
	default:
		return fmt.Errorf("%s is a %s, not a symlink; remove it or change the spec", p, kindName(fi))
	}
	c.p.Changes = append(c.p.Changes, ch)
	return nil
}

// addDiff sets ch.Diff (when enabled) with secrets redacted. oldName ""
// means the host path.
func (c *computer) addDiff(ch *Change, host string, want []byte, oldName string) {
	if !c.opt.Diff {
		return
	}
	ch.Diff = c.redactedDiff(ch, host, string(want), oldName)
}

func (c *computer) redactedDiff(ch *Change, host, want, oldName string) string {
	if looksLikeKey(host) || looksLikeKey(want) {
		return "(private key material: diff not shown)\n"
	}
	host, want = c.red.Replace(host), c.red.Replace(want)
	name := ch.Dest()
	if oldName == "" {
		oldName = "a" + name
	}
	d := diff.Unified(oldName, "b"+name, host, want, c.opt.Context)
	if c.opt.Mask == nil || d == "" {
		return d
	}
	// Masked by value, never by shape: an old secret (a rotated password,
	// the app secret after switching auth away from JWT) is hidden wherever
	// it appears, and ordinary lines such as "muc_max_occupants = 50" stay
	// readable.
	lines := strings.SplitAfter(d, "\n")
	for i := 2; i < len(lines); i++ {
		lines[i] = c.opt.Mask(lines[i])
	}
	return strings.Join(lines, "")
}

func looksLikeKey(s string) bool {
	return strings.Contains(s, "-----BEGIN") && strings.Contains(s, "PRIVATE KEY")
}

// NewRedactor returns a replacer of every non-empty value by "(sensitive)",
// longest first.
func NewRedactor(values []string) *strings.Replacer {
	vals := make([]string, 0, len(values))
	seen := map[string]bool{}
	for _, v := range values {
		if v != "" && !seen[v] {
			seen[v] = true
			vals = append(vals, v)
		}
	}
	sort.Slice(vals, func(i, j int) bool { return len(vals[i]) > len(vals[j]) })
	pairs := make([]string, 0, 2*len(vals))
	for _, v := range vals {
		pairs = append(pairs, v, Redacted)
	}
	return strings.NewReplacer(pairs...)
}
