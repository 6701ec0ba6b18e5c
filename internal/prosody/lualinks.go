package prosody

import (
	"github.com/jitsi-agent/jitsi-agent/internal/luamod"
	"github.com/jitsi-agent/jitsi-agent/internal/render"
)

// LuaLinks returns the links that make the pure-Lua token modules loadable
// for the Lua version Prosody runs on (luamod.Links), as Prosody's files.
func LuaLinks(root string) []render.File {
	var out []render.File
	for _, l := range luamod.Links(root) {
		out = append(out, render.File{Path: l.Path, Kind: render.KindSymlink, Target: l.Target, Component: "prosody"})
	}
	return out
}
