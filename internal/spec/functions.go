package spec

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/jitsi-agent/jitsi-agent/internal/input"
)

// funcEnv holds what the spec functions may touch. Tests inject both.
type funcEnv struct {
	dir      string                       // spec directory: file() paths resolve against it
	lookup   func(string) (string, bool)  // environment
	readFile func(string) ([]byte, error) // file system
	reads    map[string]struct{}          // every file() path read (for the watcher)
	secrets  *[]string                    // values read via env()/file(), for redaction
}

func (e *funcEnv) functions() map[string]function.Function {
	fns := map[string]function.Function{
		"env":  e.envFunc(),
		"file": e.fileFunc(),

		"abs":           stdlib.AbsoluteFunc,
		"ceil":          stdlib.CeilFunc,
		"chomp":         stdlib.ChompFunc,
		"coalesce":      stdlib.CoalesceFunc,
		"compact":       stdlib.CompactFunc,
		"concat":        stdlib.ConcatFunc,
		"contains":      stdlib.ContainsFunc,
		"distinct":      stdlib.DistinctFunc,
		"element":       stdlib.ElementFunc,
		"flatten":       stdlib.FlattenFunc,
		"floor":         stdlib.FloorFunc,
		"format":        stdlib.FormatFunc,
		"formatlist":    stdlib.FormatListFunc,
		"indent":        stdlib.IndentFunc,
		"join":          stdlib.JoinFunc,
		"jsondecode":    stdlib.JSONDecodeFunc,
		"jsonencode":    stdlib.JSONEncodeFunc,
		"keys":          stdlib.KeysFunc,
		"length":        stdlib.LengthFunc,
		"lookup":        stdlib.LookupFunc,
		"lower":         stdlib.LowerFunc,
		"max":           stdlib.MaxFunc,
		"merge":         stdlib.MergeFunc,
		"min":           stdlib.MinFunc,
		"parseint":      stdlib.ParseIntFunc,
		"range":         stdlib.RangeFunc,
		"regex":         stdlib.RegexFunc,
		"regexall":      stdlib.RegexAllFunc,
		"regex_replace": stdlib.RegexReplaceFunc,
		"replace":       stdlib.ReplaceFunc,
		"reverse":       stdlib.ReverseListFunc,
		"slice":         stdlib.SliceFunc,
		"sort":          stdlib.SortFunc,
		"split":         stdlib.SplitFunc,
		"strlen":        stdlib.StrlenFunc,
		"substr":        stdlib.SubstrFunc,
		"title":         stdlib.TitleFunc,
		"trim":          stdlib.TrimFunc,
		"trimprefix":    stdlib.TrimPrefixFunc,
		"trimsuffix":    stdlib.TrimSuffixFunc,
		"trimspace":     stdlib.TrimSpaceFunc,
		"upper":         stdlib.UpperFunc,
		"values":        stdlib.ValuesFunc,
		"zipmap":        stdlib.ZipmapFunc,
		"tostring":      stdlib.MakeToFunc(cty.String),
		"tonumber":      stdlib.MakeToFunc(cty.Number),
		"tobool":        stdlib.MakeToFunc(cty.Bool),
		"tolist":        stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
	}
	for name, f := range fns {
		if name != "env" && name != "file" {
			fns[name] = bounded(name, f)
		}
	}
	return fns
}

func (e *funcEnv) envFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Returns the value of an environment variable; a second argument is the default when it is unset.",
		Params:      []function.Parameter{{Name: "name", Type: cty.String}},
		VarParam:    &function.Parameter{Name: "default", Type: cty.String},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			if len(args) > 2 {
				return cty.NilVal, fmt.Errorf("env takes a name and at most one default, got %d arguments", len(args))
			}
			name := args[0].AsString()
			if v, ok := e.lookup(name); ok {
				if err := input.Text(v); err != nil {
					return cty.NilVal, fmt.Errorf("environment variable %s %v", name, err)
				}
				if len(v) > MaxValueBytes {
					return cty.NilVal, fmt.Errorf("environment variable %s: %v", name, tooBig(len(v)))
				}
				return cty.StringVal(v), nil
			}
			if len(args) == 2 {
				return args[1], nil
			}
			return cty.NilVal, fmt.Errorf("environment variable %s is not set; export it before running jitsi-agent (e.g. in an EnvironmentFile= of the unit), or give a default: env(%q, \"...\")", name, name)
		},
	})
}

func (e *funcEnv) fileFunc() function.Function {
	return function.New(&function.Spec{
		Description: "Reads a file; relative paths resolve against the spec file's directory.",
		Params:      []function.Parameter{{Name: "path", Type: cty.String}},
		Type:        function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			p := args[0].AsString()
			if p == "" {
				return cty.NilVal, fmt.Errorf("file path is empty")
			}
			if !filepath.IsAbs(p) {
				p = filepath.Join(e.dir, p)
			}
			e.reads[p] = struct{}{}
			b, err := e.readFile(p)
			if err != nil {
				var ie *input.Error
				if errors.As(err, &ie) {
					return cty.NilVal, err
				}
				if os.IsNotExist(err) {
					return cty.NilVal, fmt.Errorf("no file at %s (relative paths resolve against the spec's directory %s)", p, e.dir)
				}
				if os.IsPermission(err) {
					return cty.NilVal, fmt.Errorf("cannot read %s: permission denied; run as a user that can read it", p)
				}
				return cty.NilVal, fmt.Errorf("cannot read %s: %v", p, err)
			}
			s := string(b)
			e.noteSecret(s)
			if err := input.Text(s); err != nil {
				return cty.NilVal, fmt.Errorf("%s %v; file() reads text files", p, err)
			}
			return cty.StringVal(s), nil
		},
	})
}

// noteSecret records values read from outside the spec so diagnostics can
// redact them even when they end up somewhere unexpected.
func (e *funcEnv) noteSecret(v string) {
	if e.secrets != nil && len(v) >= 8 {
		*e.secrets = append(*e.secrets, v)
	}
}

// MaxInputFile caps what file() and template sources may read.
const MaxInputFile = input.MaxFile

// MaxSpecFile caps the spec itself (100,000 template blocks fit).
const MaxSpecFile = 16 << 20
