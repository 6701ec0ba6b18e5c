package prosody

import (
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

func TestMissingModules(t *testing.T) {
	root := t.TempDir()
	src := []byte(`plugin_paths = { "/usr/share/jitsi-meet/prosody-plugins/" }
VirtualHost "meet.test"
    authentication = "token"
    modules_enabled = { "bosh"; "muc_lobby_rooms"; "features_identity" }
Component "conference.meet.test" "muc"
    modules_enabled = { "token_verification"; "muc_lobby_rooms" }
`)
	m, err := ModelOf(src)
	if err != nil {
		t.Fatal(err)
	}
	if got := MissingModules(root, m, PluginPaths(src)); got != nil {
		t.Fatalf("without Prosody under root nothing is judged: %v", got)
	}
	testenv.WriteUnder(t, root, CoreModulesDir+"/mod_bosh.lua", "")
	testenv.WriteUnder(t, root, CoreModulesDir+"/muc/mod_muc.lua", "")
	testenv.WriteUnder(t, root, "/usr/share/jitsi-meet/prosody-plugins/mod_auth_token.lua", "")
	testenv.WriteUnder(t, root, "/usr/share/jitsi-meet/prosody-plugins/mod_token_verification.lua", "")
	got := MissingModules(root, m, PluginPaths(src))
	var s []string
	for _, g := range got {
		s = append(s, g.Module+"@"+strings.Join(g.Hosts, ","))
	}
	want := "features_identity@meet.test muc_lobby_rooms@meet.test,conference.meet.test"
	if strings.Join(s, " ") != want {
		t.Errorf("missing: %q, want %q", strings.Join(s, " "), want)
	}
}
