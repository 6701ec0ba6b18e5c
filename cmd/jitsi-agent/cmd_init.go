package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"
)

// initFile is the name init writes in its directory.
const initFile = "jitsi-agent.hcl"

// domainPattern is compiled when init runs, not at program start.
const domainPattern = `^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`

// starterSpec is the commented spec init writes; DOMAIN is replaced. It
// must validate as written (TestInitStarterValidates).
const starterSpec = `# jitsi-agent spec: one file describes the whole Jitsi Meet deployment.
# Check it:   JITSI_APP_SECRET=$(openssl rand -hex 32) jitsi-agent validate jitsi-agent.hcl
# Preview:    jitsi-agent plan jitsi-agent.hcl
# Apply:      jitsi-agent apply jitsi-agent.hcl     (or run the daemon: jitsi-agent unit)
# Reference:  docs/spec.md; every attribute below shows its default unless noted.

# Variables take values from -var NAME=VALUE, -var-file FILE or the
# environment (JITSI_AGENT_VAR_domain), in that order of precedence.
variable "domain" {
  default     = "DOMAIN"
  description = "Public host name and XMPP domain"
}

domain = var.domain

# One block per machine when several share this spec; without one, the
# machine's own host name is used.
# host "meet1" {
#   public_ips  = ["203.0.113.10"] # what the videobridge and coturn announce behind NAT
#   private_ips = ["10.0.0.10"]
# }

# Token authentication: your app mints JWTs with this id and secret
# (jitsi-agent token mint shows one). Alternatives: auth "anonymous" {} or
# auth "internal" {} (Prosody accounts).
auth "jwt" {
  app_id     = "my-app-id"
  app_secret = env("JITSI_APP_SECRET") # never inline; at least 32 characters
}

meeting {
  start_audio_muted = false
  start_video_muted = false
  lobby             = true # the waiting room, switched on per room by a moderator
}

videobridge {
  udp_port = 10000 # open UDP 10000 in the firewall
}

tls {
  certificate = "/etc/jitsi/meet/${var.domain}.crt"
  key         = "/etc/jitsi/meet/${var.domain}.key"
  # Let's Encrypt instead of your own files (needs port 80 reachable):
  # acme {
  #   email = "ops@example.com"
  # }
}

# A restart of jicofo or the videobridge ends every meeting: "defer" waits
# for 'jitsi-agent apply -restart-deferred'.
service "jicofo" {
  restart = "defer"
}

service "jvb" {
  restart = "defer"
}

# The daemon's loopback listener for /metrics, /healthz and /status.
metrics {
  listen = "127.0.0.1:9137"
}

# The host firewall: an nftables table of jitsi-agent's own (inet jitsi_agent)
# opening exactly this deployment's public ports (80, 443, 10000/udp,
# 3478/udp, 5349/tcp, coturn's relay range) and SSH; other inbound traffic is
# dropped, other tables are left alone. Over SSH, apply firewall changes with
# 'jitsi-agent apply -confirm 2m' and confirm from a new session.
firewall {
  ssh_port = 22 # the port sshd listens on: always allowed
}
`

func runInit(c *cli.Call) int {
	dir := "."
	if len(c.Args) == 1 {
		dir = c.Args[0]
	}
	domain := c.String("domain")
	if !regexp.MustCompile(domainPattern).MatchString(domain) {
		return c.Usagef("-domain %q is not a lower-case DNS name such as meet.example.com", domain)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		printError(c.Stderr, err)
		return exitError
	}
	path := filepath.Join(dir, initFile)
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if c.Bool("force") {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, fs.ErrExist) {
		fmt.Fprintf(c.Stderr, "Error: %s exists; it was left as is (-force overwrites it).\n", path)
		return exitError
	}
	if err != nil {
		printError(c.Stderr, err)
		return exitError
	}
	_, err = f.WriteString(strings.ReplaceAll(starterSpec, "DOMAIN", domain))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(c.Stderr, "Error: write %s: %v\n", path, err)
		return exitError
	}
	fmt.Fprintf(c.Stdout, "Wrote %s. Next:\n  export JITSI_APP_SECRET=$(openssl rand -hex 32)\n  jitsi-agent validate %s\n", path, path)
	return exitOK
}
