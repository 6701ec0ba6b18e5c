package prosody

import (
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/luamod"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// The links are Prosody's symlinks, one per luamod.Links entry.
func TestLuaLinksAreProsodySymlinks(t *testing.T) {
	root := t.TempDir()
	testenv.WriteUnder(t, root, luamod.ProsodyBin, "#!/usr/bin/env lua5.4\n")
	testenv.WriteUnder(t, root, "/usr/share/lua/5.2/basexx.lua", "return {}")
	got := LuaLinks(root)
	if len(got) != 1 || got[0].Path != "/usr/local/share/lua/5.4/basexx.lua" || got[0].Target != "/usr/share/lua/5.2/basexx.lua" ||
		got[0].Kind != render.KindSymlink || got[0].Component != "prosody" {
		t.Errorf("links: %+v", got)
	}
}
