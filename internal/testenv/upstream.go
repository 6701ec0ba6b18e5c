package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// UpstreamEnv names a directory holding Jitsi's upstream test material
// (jitsi-meet, jicofo, jitsi-videobridge: the layout of shared/upstream).
const UpstreamEnv = "JITSI_AGENT_UPSTREAM"

// Upstream returns the upstream test-material directory that holds rel (a
// path inside it, e.g. "jitsi-meet/resources/prosody-plugins/mod_auth_token.lua"):
// $JITSI_AGENT_UPSTREAM, else a shared/upstream directory beside the working
// directory or one of its parents (the repository sits next to shared/ on
// the developers' machines and in CI). It skips the test, or fails it under
// JITSI_AGENT_REQUIRE_REAL=1, when none holds rel.
func Upstream(t testing.TB, rel string) string {
	t.Helper()
	var tried []string
	if u := os.Getenv(UpstreamEnv); u != "" {
		tried = append(tried, u)
	}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			tried = append(tried, filepath.Join(d, "shared", "upstream"))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, dir := range tried {
		if _, err := os.Stat(filepath.Join(dir, rel)); err == nil {
			return dir
		}
	}
	Unavailable(t, "Jitsi's upstream test material ("+rel+") not found in "+strings.Join(tried, ", "),
		"copy shared/ next to the repository, or set "+UpstreamEnv+" to a directory with jitsi-meet, jicofo and jitsi-videobridge")
	return ""
}
