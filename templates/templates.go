// Package templates holds the built-in templates jitsi-agent renders the
// Jitsi configuration files from, the override mechanism (a directory whose
// files replace built-ins by name), and the loader for the user's own
// template sources.
//
// The templates are data: package render executes them. Nothing here knows
// what a template means.
package templates

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/jitsi-agent/jitsi-agent/internal/input"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// Builtin holds the built-in templates, one per rendered file kind, at the
// root of the file system (for example "prosody.cfg.lua.tmpl").
//
//go:embed *.tmpl
var Builtin embed.FS

// Overlay returns the built-in templates with the files of dir layered on
// top: a file in dir replaces the built-in template with the same name, every
// other name falls through to the built-ins. dir "" means the built-ins only.
// Only files that exist in dir override; any other error (permissions, a
// directory where a file should be) is reported by Open and not masked.
func Overlay(dir string) fs.FS {
	if dir == "" {
		return Builtin
	}
	return overlay{over: os.DirFS(dir), base: Builtin}
}

type overlay struct{ over, base fs.FS }

func (o overlay) Open(name string) (fs.File, error) {
	f, err := o.over.Open(name)
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("template override %s: %w", name, err)
	}
	return o.base.Open(name)
}

// ReadUserSources reads the source of every user template (d.Templates) and
// returns the contents keyed by template name, as render.Input.UserSources
// expects: the text the spec's loader read (Template.SourceText), else the
// file. Source paths are already resolved against the spec's directory.
// Errors name the template and the path.
func ReadUserSources(d *spec.Deployment) (map[string][]byte, error) {
	out := make(map[string][]byte, len(d.Templates))
	for _, t := range d.Templates {
		if t.SourceText != nil {
			out[t.Name] = t.SourceText
			continue
		}
		if t.Source == "" {
			return nil, fmt.Errorf("template %q: no source path", t.Name)
		}
		b, err := input.ReadFile(t.Source, input.MaxFile)
		if err != nil {
			return nil, fmt.Errorf("template %q: reading source: %w", t.Name, err) // the PathError names the path
		}
		out[t.Name] = b
	}
	return out, nil
}
