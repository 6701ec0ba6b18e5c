// Package systemdunit embeds the unit files in this directory, so the binary
// can install its own unit (jitsi-agent unit > /etc/systemd/system/...).
package systemdunit

import _ "embed"

// Service is systemd/jitsi-agent.service.
//
//go:embed jitsi-agent.service
var Service []byte
