package fleet

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/agent"
	"github.com/jitsi-agent/jitsi-agent/internal/input"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// ClusterSecretEnv is the environment name a fleet spec reads its
// cluster_secret from (cluster_secret = env("JITSI_AGENT_CLUSTER_SECRET")):
// in fleet mode the agents answer it with the fleet's cluster secret,
// created once by the first agent and kept sealed in the store; `fleet
// push` never ships the pusher's value.
const ClusterSecretEnv = "JITSI_AGENT_CLUSTER_SECRET"

// SpecDir is where a generation's spec "lives" on a host: relative paths
// in it (file(), template sources) resolve against this directory, and are
// answered from the generation, never from the host's disk.
const SpecDir = "/etc/jitsi-agent/fleet"

// MaxSealed bounds one generation's sealed inputs (etcd refuses requests
// above 1.5 MiB by default).
const MaxSealed = 1 << 20

// Bundle is a generation's inputs in clear: the spec, every file it read
// and every environment value it looked up. It only exists in memory.
type Bundle struct {
	SpecName string `json:"spec_name"`
	Spec     []byte `json:"spec"`
	// Dir is the spec's directory on the machine that pushed; Files are
	// keyed by their absolute path there (relative paths in the spec are
	// resolved against Dir, absolute ones are kept as written).
	Dir      string            `json:"dir"`
	Files    map[string][]byte `json:"files,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Vars     map[string]string `json:"vars,omitempty"`
	VarFiles []string          `json:"var_files,omitempty"`
}

// HostPlan is one host of a generation and its place in the rollout.
type HostPlan struct {
	Name    string   `json:"name"`
	Roles   []string `json:"roles"`
	Address string   `json:"address,omitempty"`
	Shard   string   `json:"shard,omitempty"`
	// Wave orders the rollout: a host takes the generation once every
	// live host of a lower wave runs it and is healthy.
	Wave int `json:"wave"`
}

// Generation is one published state of the fleet (the store's
// generations/N). Only Sealed holds the inputs, encrypted.
type Generation struct {
	Number         int64      `json:"generation"`
	Created        time.Time  `json:"created"`
	By             string     `json:"by,omitempty"`
	Version        string     `json:"version,omitempty"`
	SpecName       string     `json:"spec_name"`
	Digest         string     `json:"digest"` // keyed digest of the inputs: equal digests, equal inputs
	KeyID          string     `json:"key_id"`
	MaxUnavailable int        `json:"max_unavailable"`
	Hosts          []HostPlan `json:"hosts"`
	Sealed         []byte     `json:"sealed"`
}

func sealContext(n int64) string { return fmt.Sprintf("jitsi-agent/fleet/generation/%d", n) }

// Host returns the plan of one host.
func (g *Generation) Host(name string) (HostPlan, bool) {
	for _, h := range g.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return HostPlan{}, false
}

// Open decrypts the generation's inputs.
func (g *Generation) Open(k Key) (*Bundle, error) {
	if g.KeyID != k.ID {
		return nil, fmt.Errorf("generation %d was sealed with fleet key %s, this host has %s: copy the fleet key file from the host that pushed", g.Number, g.KeyID, k.ID)
	}
	plain, err := k.Open(g.Sealed, sealContext(g.Number))
	if err != nil {
		return nil, fmt.Errorf("generation %d: %w", g.Number, err)
	}
	var b Bundle
	if err := json.Unmarshal(plain, &b); err != nil {
		return nil, fmt.Errorf("generation %d: %w", g.Number, err)
	}
	return &b, nil
}

// Seal fills Sealed, Digest and KeyID for generation n.
func (g *Generation) seal(k Key, b *Bundle) error {
	plain, err := json.Marshal(b)
	if err != nil {
		return err
	}
	box := k.Seal(plain, sealContext(g.Number))
	if len(box) > MaxSealed {
		return fmt.Errorf("the spec and its inputs take %d bytes sealed; a generation holds at most %d (etcd's request limit): move large files out of file()", len(box), MaxSealed)
	}
	g.Sealed, g.KeyID, g.Digest = box, k.ID, k.digest(plain)
	return nil
}

func (k Key) digest(b []byte) string {
	m := hmac.New(sha256.New, k.k[:])
	m.Write([]byte("jitsi-agent/fleet/digest/v1\x00"))
	m.Write(b)
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// Options are the spec options that load the bundle on host, with the
// fleet's cluster secret: nothing is read from the host's disk or
// environment.
func (b *Bundle) Options(host, clusterSecret string) (path string, opts spec.Options) {
	path = filepath.Join(SpecDir, b.SpecName)
	read := func(p string) ([]byte, error) {
		if p == path {
			return b.Spec, nil
		}
		key := p
		if rel, err := filepath.Rel(SpecDir, p); err == nil && filepath.IsLocal(rel) {
			key = filepath.Join(b.Dir, rel) // a relative path of the spec
		}
		if data, ok := b.Files[key]; ok {
			return data, nil
		}
		return nil, &fs.PathError{Op: "read", Path: p, Err: errors.New("not in this fleet generation (push again from a machine that has it)")}
	}
	lookup := func(name string) (string, bool) {
		if name == ClusterSecretEnv {
			return clusterSecret, clusterSecret != ""
		}
		v, ok := b.Env[name]
		return v, ok
	}
	return path, spec.Options{Host: host, Vars: b.Vars, VarFiles: b.VarFiles, LookupEnv: lookup, ReadFile: read,
		Hostname: func() (string, error) { return host, nil }}
}

// BuildError is a spec that does not load (or render) for one host.
type BuildError struct {
	Host   string
	Result *spec.Result // nil when rendering failed
	Err    error
}

func (e *BuildError) Error() string {
	if e.Result != nil {
		return fmt.Sprintf("host %q: %s", e.Host, e.Result.Summary())
	}
	return fmt.Sprintf("host %q: %v", e.Host, e.Err)
}

// Build reads the spec at path as `fleet push` publishes it: it loads and
// renders it for every host block (each must be valid), records every file
// and environment value it read, and orders the hosts into rollout waves
// (hosts that run anything but the videobridge one at a time in file
// order, then the bridges maxUnavailable at a time).
func Build(path string, opts spec.Options, maxUnavailable int) (*Bundle, []HostPlan, error) {
	if maxUnavailable < 1 {
		return nil, nil, fmt.Errorf("max-unavailable %d: at least 1", maxUnavailable)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, err
	}
	rec := &recorder{files: map[string][]byte{}, env: map[string]string{}, spec: abs}
	placeholder := make([]byte, 24)
	_, _ = rand.Read(placeholder)
	rec.cluster = hex.EncodeToString(placeholder)
	for i, f := range opts.VarFiles {
		if opts.VarFiles[i], err = filepath.Abs(f); err != nil {
			return nil, nil, err
		}
	}
	opts.ReadFile, opts.LookupEnv = rec.read, rec.lookup
	opts.Hostname = func() (string, error) { return "", nil }

	// First pass: learn the host blocks.
	first := opts
	first.Host = ""
	res := spec.Load(abs, first)
	if res.HasErrors() {
		return nil, nil, &BuildError{Host: "(any)", Result: res}
	}
	if res.Deployment.TemplatesDir != "" {
		return nil, nil, errors.New("templates_dir is not supported by fleet push (its files are read from each host's disk); use template blocks, whose sources travel with the generation")
	}
	hosts := res.Deployment.Hosts
	if len(hosts) == 1 && hosts[0].Name == "" { // no host block: the implicit host of this machine

		return nil, nil, errors.New("fleet push needs host blocks: add host \"NAME\" { roles = [...] } for each machine (its agent runs with --host NAME)")
	}
	for _, h := range hosts {
		o := opts
		o.Host = h.Name
		r := spec.Load(abs, o)
		if r.HasErrors() {
			return nil, nil, &BuildError{Host: h.Name, Result: r}
		}
		if _, err := agent.DesiredStateReadOnly(r.Deployment, "/nonexistent-state-for-fleet-push", time.Now()); err != nil {
			return nil, nil, &BuildError{Host: h.Name, Err: err}
		}
	}

	b := &Bundle{SpecName: filepath.Base(abs), Dir: filepath.Dir(abs), Files: map[string][]byte{}, Env: rec.env, Vars: opts.Vars, VarFiles: opts.VarFiles}
	for p, data := range rec.files {
		if p == abs {
			b.Spec = data
			continue
		}
		b.Files[p] = data
	}
	if b.Spec == nil {
		return nil, nil, fmt.Errorf("%s: spec was not read", path)
	}
	// Var files given by absolute path keep it (Options answers them by
	// the same path).
	return b, Waves(hosts, maxUnavailable), nil
}

// Waves orders hosts for a rolling rollout.
func Waves(hosts []spec.Host, maxUnavailable int) []HostPlan {
	var out []HostPlan
	wave := 0
	var bridges []spec.Host
	for _, h := range hosts {
		if isBridgeOnly(h.Roles) {
			bridges = append(bridges, h)
			continue
		}
		out = append(out, HostPlan{Name: h.Name, Roles: slices.Clone(h.Roles), Address: h.Address, Shard: h.Shard, Wave: wave})
		wave++
	}
	for i, h := range bridges {
		out = append(out, HostPlan{Name: h.Name, Roles: slices.Clone(h.Roles), Address: h.Address, Shard: h.Shard, Wave: wave + i/maxUnavailable})
	}
	return out
}

func isBridgeOnly(roles []string) bool {
	if len(roles) == 0 {
		return false
	}
	for _, r := range roles {
		if r != spec.JVB {
			return false
		}
	}
	return true
}

// recorder answers the spec loader's file and environment reads from the
// pusher's machine and remembers them for the bundle.
type recorder struct {
	mu      sync.Mutex
	spec    string
	cluster string
	files   map[string][]byte
	env     map[string]string
}

func (r *recorder) read(p string) ([]byte, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	limit := int64(spec.MaxInputFile)
	if abs == r.spec {
		limit = spec.MaxSpecFile
	}
	data, err := input.ReadFile(abs, limit)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.files[abs] = data
	r.mu.Unlock()
	return data, nil
}

func (r *recorder) lookup(name string) (string, bool) {
	if name == ClusterSecretEnv {
		// A strong stand-in for validation; every host gets the fleet's.
		return r.cluster, true
	}
	v, ok := os.LookupEnv(name)
	if ok {
		r.mu.Lock()
		r.env[name] = v
		r.mu.Unlock()
	}
	return v, ok
}

// EnvNames lists the environment names a bundle carries (for messages;
// never the values).
func (b *Bundle) EnvNames() []string {
	var out []string
	for k := range b.Env {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// FileNames lists the input files a bundle carries.
func (b *Bundle) FileNames() []string {
	var out []string
	for k := range b.Files {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
