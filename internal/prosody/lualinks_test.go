package prosody

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/luamod"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

// The links are Prosody's symlinks, one per luamod.Links entry.
func TestLuaLinksAreProsodySymlinks(t *testing.T) {
	root := t.TempDir()
	mkfile(t, root, luamod.ProsodyBin, "#!/usr/bin/env lua5.4\n")
	mkfile(t, root, "/usr/share/lua/5.2/basexx.lua", "return {}")
	got := LuaLinks(root)
	if len(got) != 1 || got[0].Path != "/usr/local/share/lua/5.4/basexx.lua" || got[0].Target != "/usr/share/lua/5.2/basexx.lua" ||
		got[0].Kind != render.KindSymlink || got[0].Component != "prosody" {
		t.Errorf("links: %+v", got)
	}
}

func mkfile(t *testing.T, root, p, content string) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
