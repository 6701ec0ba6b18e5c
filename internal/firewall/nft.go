package firewall

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Backend is the kernel side: nft itself, or a fake in tests.
type Backend interface {
	// Check validates a script against the running kernel without
	// committing it (nft -c).
	Check(ctx context.Context, script []byte) error
	// Load applies a script in one transaction (nft -f).
	Load(ctx context.Context, script []byte) error
	// Table lists the agent's table in nft syntax; exists is false when
	// there is none.
	Table(ctx context.Context) (listed string, exists bool, err error)
	// TableJSON lists the agent's table as nft -j prints it.
	TableJSON(ctx context.Context) (js []byte, exists bool, err error)
}

// Nft runs the nft binary.
type Nft struct {
	// Argv is the command prefix (default {"nft"}); tests run
	// {"ip", "netns", "exec", NS, "nft"} so the host's ruleset is never touched.
	Argv []string
	// Timeout bounds each call (default 30 s).
	Timeout time.Duration
}

// maxOutput bounds what is read from nft (a table of a few dozen rules is a
// few KiB).
const maxOutput = 4 << 20

func (n Nft) run(ctx context.Context, stdin []byte, args ...string) ([]byte, error) {
	argv := n.Argv
	if len(argv) == 0 {
		argv = []string{"nft"}
	}
	to := n.Timeout
	if to <= 0 {
		to = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	full := append(append([]string{}, argv...), args...)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.WaitDelay = time.Second
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr limitedBuffer
	stdout.max, stderr.max = maxOutput, 64<<10
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: timed out after %s", strings.Join(full, " "), to)
		}
		var ee *exec.Error
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("%s: %w (install: apt-get install nftables)", full[0], err)
		}
		if msg != "" {
			return nil, fmt.Errorf("nft %s: %s", strings.Join(args, " "), msg)
		}
		return nil, fmt.Errorf("nft %s: %w", strings.Join(args, " "), err)
	}
	if stdout.over {
		return nil, fmt.Errorf("nft %s: output larger than %d bytes", strings.Join(args, " "), maxOutput)
	}
	return stdout.Bytes(), nil
}

// Check implements Backend: nft -c -f - (the kernel validates the whole
// transaction and aborts it).
func (n Nft) Check(ctx context.Context, script []byte) error {
	_, err := n.run(ctx, script, "-c", "-f", "-")
	return err
}

// Load implements Backend: nft -f - (one transaction).
func (n Nft) Load(ctx context.Context, script []byte) error {
	_, err := n.run(ctx, script, "-f", "-")
	return err
}

// list runs "nft [-j] list table inet jitsi_agent" once; a missing table is
// exists == false, not an error.
func (n Nft) list(ctx context.Context, js bool) ([]byte, bool, error) {
	args := []string{"list", "table", Family, Table}
	if js {
		args = append([]string{"-j"}, args...)
	}
	out, err := n.run(ctx, nil, args...)
	if err != nil {
		if strings.Contains(err.Error(), "No such file or directory") {
			return nil, false, nil
		}
		return nil, false, err
	}
	return out, true, nil
}

// Table implements Backend.
func (n Nft) Table(ctx context.Context) (string, bool, error) {
	out, ok, err := n.list(ctx, false)
	return string(out), ok, err
}

// TableJSON implements Backend.
func (n Nft) TableJSON(ctx context.Context) ([]byte, bool, error) {
	return n.list(ctx, true)
}

// Normalize turns nft -j output into a stable form for comparison: metainfo,
// handles and counter values are dropped, the rest re-encoded with sorted
// keys.
func Normalize(js []byte) ([]byte, error) {
	var doc struct {
		Nftables []map[string]any `json:"nftables"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("parse nft -j output: %w", err)
	}
	var out []any
	for _, obj := range doc.Nftables {
		if _, ok := obj["metainfo"]; ok {
			continue
		}
		out = append(out, strip(obj))
	}
	return json.Marshal(out)
}

func strip(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			if k == "handle" {
				continue
			}
			if k == "counter" {
				m[k] = nil
				continue
			}
			m[k] = strip(val)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, val := range x {
			s[i] = strip(val)
		}
		return s
	}
	return v
}

type limitedBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.Len(); len(p) > room {
		l.over = true
		if room > 0 {
			l.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return l.Buffer.Write(p)
}
