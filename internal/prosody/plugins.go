package prosody

import (
	"os"
	"path/filepath"
	"strings"
)

// CoreModulesDir is where Debian's prosody package installs Prosody's own
// modules.
const CoreModulesDir = "/usr/lib/prosody/modules"

// MissingModule is a module the config loads that no plugin directory has.
type MissingModule struct {
	Module string
	Hosts  []string
}

// moduleFiles are the paths Prosody's pluginloader tries for a module, in
// each directory (util/pluginloader.lua).
func moduleFiles(name string) []string {
	res := "mod_" + name + ".lua"
	return []string{
		filepath.Join("mod_"+name, name, res),
		filepath.Join("mod_"+name, res),
		filepath.Join(name, res),
		res,
	}
}

// PluginPaths returns the config's plugin_paths (global).
func PluginPaths(src []byte) []string {
	cfg, err := ParseConfig(src)
	if err != nil {
		return nil
	}
	v, ok := cfg.Global["plugin_paths"]
	if !ok {
		return nil
	}
	if v.Kind == LuaString {
		return []string{v.Str}
	}
	return v.List
}

// MissingModules lists the modules m loads (modules_enabled, authentication
// providers, component modules) that are neither Prosody's own nor in one
// of pluginPaths, all read under root. Nothing when Prosody is not
// installed under root (its core module directory is missing): a tree
// rendered for another machine cannot be judged.
func MissingModules(root string, m *Model, pluginPaths []string) []MissingModule {
	core := filepath.Join(root, CoreModulesDir)
	if _, err := os.Stat(core); err != nil {
		return nil
	}
	dirs := []string{core}
	for _, p := range pluginPaths {
		dirs = append(dirs, filepath.Join(root, p))
	}
	found := map[string]bool{}
	byModule := map[string]*MissingModule{}
	var out []*MissingModule
	for _, n := range m.Names {
		for _, mod := range m.Hosts[n].Modules {
			if strings.ContainsAny(mod, "/\\") || mod == "" {
				continue
			}
			ok, seen := found[mod]
			if !seen {
				ok = false
				for _, d := range dirs {
					for _, f := range moduleFiles(mod) {
						if _, err := os.Stat(filepath.Join(d, f)); err == nil {
							ok = true
						}
					}
				}
				found[mod] = ok
			}
			if ok {
				continue
			}
			if mm := byModule[mod]; mm != nil {
				mm.Hosts = append(mm.Hosts, n)
				continue
			}
			mm := &MissingModule{Module: mod, Hosts: []string{n}}
			byModule[mod] = mm
			out = append(out, mm)
		}
	}
	res := make([]MissingModule, len(out))
	for i, mm := range out {
		res[i] = *mm
	}
	return res
}
