package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	gohcl "github.com/jitsi-agent/jitsi-agent/internal/hcldecode"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/jitsi-agent/jitsi-agent/internal/input"
)

// Options tune Load.
type Options struct {
	// Host selects the host block this machine renders ("" = the only host
	// block, or the one named like Hostname, or the implicit default).
	Host string
	// Vars override variable defaults (-var name=value). Values are parsed as
	// the default's type.
	Vars map[string]string
	// VarFiles are HCL files of NAME = VALUE lines (-var-file; .json files
	// in HCL's JSON syntax). Later files override earlier ones; Vars
	// override them all; JITSI_AGENT_VAR_NAME is below every file.
	VarFiles []string
	// LookupEnv replaces os.LookupEnv (tests).
	LookupEnv func(string) (string, bool)
	// ReadFile replaces os.ReadFile (tests).
	ReadFile func(string) ([]byte, error)
	// Hostname replaces os.Hostname (tests).
	Hostname func() (string, error)
}

// VarEnvPrefix: JITSI_AGENT_VAR_<name> overrides a variable's default.
const VarEnvPrefix = "JITSI_AGENT_VAR_"

// Result is what Load returns: a Deployment when there are no errors, and
// every diagnostic (errors and warnings) found on the way.
type Result struct {
	Deployment *Deployment
	Diags      hcl.Diagnostics
	// Files are the parsed sources, for diagnostic snippets.
	Files map[string]*hcl.File
	// Inputs are every file the spec read (the spec itself, file() targets,
	// template sources, the templates dir): what a watcher must watch.
	Inputs []string

	redact []string
}

// HasErrors reports whether loading failed.
func (r *Result) HasErrors() bool { return r.Diags.HasErrors() }

// Redactions returns values that must never be printed. Values shorter than
// 8 characters are left out: they are too short to be valid secrets (the
// spec rejected them) and would garble ordinary words in logs.
func (r *Result) Redactions() []string {
	var out []string
	for _, v := range r.redact {
		if len(v) >= 8 {
			out = append(out, v)
		}
	}
	return out
}

// Load parses, decodes and validates the spec at path.
func Load(path string, opts Options) *Result {
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	readSpec := opts.ReadFile
	if readSpec == nil {
		readSpec = func(p string) ([]byte, error) { return input.ReadFile(p, MaxSpecFile) }
	}
	if opts.ReadFile == nil {
		opts.ReadFile = func(p string) ([]byte, error) { return input.ReadFile(p, MaxInputFile) }
	}
	if opts.Hostname == nil {
		opts.Hostname = os.Hostname
	}
	res := &Result{}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	src, err := readSpec(path)
	if err != nil {
		res.Diags = append(res.Diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Cannot read spec file",
			Detail:   fmt.Sprintf("%v. Pass the path of an HCL spec (.hcl) or its JSON form (.hcl.json); `jitsi-agent validate examples/meet.hcl` shows a working one.", err),
		})
		return res
	}
	res.Inputs = append(res.Inputs, abs)
	if d := checkSource(src, path); d != nil {
		res.Diags = append(res.Diags, d...)
		return res
	}

	var file *hcl.File
	var diags hcl.Diagnostics
	var compacted []rawTemplate // template blocks decoded while parsing
	if strings.HasSuffix(path, ".json") {
		file, diags = hclparse.NewParser().ParseJSON(src, path)
	} else {
		var p parsed
		p, diags = parseHCL(src, path)
		file, compacted = p.file, p.templates
	}
	res.Files = map[string]*hcl.File{path: file}
	res.Diags = append(res.Diags, diags...)
	if diags.HasErrors() {
		return res
	}

	env := &funcEnv{
		dir:      filepath.Dir(abs),
		lookup:   opts.LookupEnv,
		readFile: opts.ReadFile,
		reads:    map[string]struct{}{},
		secrets:  &res.redact,
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{}, Functions: env.functions()}

	// Phase 1: variables and locals.
	var hdr rawHeader
	diags = gohcl.DecodeBody(file.Body, nil, &hdr)
	res.Diags = append(res.Diags, diags...)
	if diags.HasErrors() {
		return res
	}
	p := hclparse.NewParser()
	fileVals, diags := readVarFiles(p, opts, res)
	for name, f := range p.Files() {
		res.Files[name] = f
	}
	res.Diags = append(res.Diags, diags...)
	if diags.HasErrors() {
		return res
	}
	res.Diags = append(res.Diags, evalVariables(hdr.Variables, opts, fileVals, ctx)...)
	res.Diags = append(res.Diags, evalLocals(hdr.Locals, ctx)...)
	if res.Diags.HasErrors() {
		res.Diags = dedupe(res.Diags)
		return res
	}

	// Phase 2: the spec itself.
	var raw rawSpec
	diags = gohcl.DecodeBody(hdr.Rest, ctx, &raw)
	res.Diags = append(res.Diags, diags...)
	if diags.HasErrors() {
		res.Diags = dedupe(res.Diags)
		return res
	}
	raw.Templates = mergeTemplates(raw.Templates, compacted)
	compacted = nil

	r := &resolver{raw: &raw, ctx: ctx, opts: opts, specFile: path, specDir: filepath.Dir(abs), redact: &res.redact}
	d := r.resolve()
	res.Diags = append(res.Diags, r.diags...)
	for p := range env.reads {
		res.Inputs = append(res.Inputs, p)
	}
	if d != nil {
		for _, t := range d.Templates {
			res.Inputs = append(res.Inputs, t.Source)
		}
		if d.TemplatesDir != "" {
			res.Inputs = append(res.Inputs, d.TemplatesDir)
		}
	}
	sort.Strings(res.Inputs[1:])
	res.Diags = dedupe(res.Diags)
	if res.Diags.HasErrors() {
		return res
	}
	res.Deployment = d
	return res
}

// maxVarFile bounds one -var-file.
const maxVarFile = 1 << 20

// fileVar is a value from a -var-file and where it was set.
type fileVar struct {
	val cty.Value
	rng hcl.Range
}

// readVarFiles parses the -var-file files (constants only) into one map,
// later files overriding earlier ones, and records them as inputs.
func readVarFiles(p *hclparse.Parser, opts Options, res *Result) (map[string]fileVar, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	vals := map[string]fileVar{}
	for _, path := range opts.VarFiles {
		src, err := opts.ReadFile(path)
		if err == nil && len(src) > maxVarFile {
			err = fmt.Errorf("larger than %d KiB; a variables file holds NAME = VALUE lines", maxVarFile>>10)
		}
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot read variables file",
				Detail:   fmt.Sprintf("-var-file %s: %v.", path, err),
			})
			continue
		}
		if abs, err := filepath.Abs(path); err == nil {
			res.Inputs = append(res.Inputs, abs)
		}
		if d := checkSource(src, path); d != nil {
			diags = append(diags, d...)
			continue
		}
		var f *hcl.File
		var d hcl.Diagnostics
		if strings.HasSuffix(path, ".json") {
			f, d = p.ParseJSON(src, path)
		} else {
			f, d = p.ParseHCL(src, path)
		}
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		attrs, d := f.Body.JustAttributes()
		diags = append(diags, d...)
		for name, a := range attrs {
			v, d := a.Expr.Value(nil)
			if d.HasErrors() {
				for _, dd := range d {
					dd.Detail += " A variables file holds constants only (no var., local. or functions)."
				}
				diags = append(diags, d...)
				continue
			}
			vals[name] = fileVar{val: v, rng: a.Range}
		}
	}
	return vals, diags
}

func evalVariables(vars []rawVariable, opts Options, fileVals map[string]fileVar, ctx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	vals := map[string]cty.Value{}
	seen := map[string]hcl.Range{}
	for _, v := range vars {
		if prev, dup := seen[v.Name]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate variable",
				Detail:   fmt.Sprintf("Variable %q was already declared at %s. Rename or remove one of them.", v.Name, prev),
				Subject:  v.DefRange.Ptr(),
			})
			continue
		}
		seen[v.Name] = v.DefRange
		if !hclIdent(v.Name) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid variable name",
				Detail:   "A variable name must start with a letter and contain only letters, digits, underscores and dashes.",
				Subject:  v.DefRange.Ptr(),
			})
			continue
		}
		def, d := v.Default.Value(nil) // defaults are constants
		if d.HasErrors() {
			for _, dd := range d {
				dd.Detail += " A variable default must be a constant; use a local for computed values."
			}
			diags = append(diags, d...)
			continue
		}
		val := def
		override, have := opts.Vars[v.Name]
		if fv, ok := fileVals[v.Name]; ok && !have {
			ov, err := convertFileVar(fv.val, def)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid value for variable",
					Detail:   fmt.Sprintf("The value for variable %q is not a valid %s: %v. Its default is at %s.", v.Name, def.Type().FriendlyName(), err, v.DefRange),
					Subject:  fv.rng.Ptr(),
				})
				continue
			}
			val = ov
		} else if !have {
			override, have = opts.LookupEnv(VarEnvPrefix + v.Name)
		}
		if have {
			ov, err := convertOverride(override, def)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Invalid value for variable",
					Detail:   fmt.Sprintf("The value given for variable %q (by -var or %s%s) is not a valid %s: %v.", v.Name, VarEnvPrefix, v.Name, def.Type().FriendlyName(), err),
					Subject:  v.DefRange.Ptr(),
				})
				continue
			}
			val = ov
		}
		if val.IsNull() {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "No value for required variable",
				Detail:   fmt.Sprintf("Variable %q has no default. Set it with -var %s=VALUE or the environment variable %s%s.", v.Name, v.Name, VarEnvPrefix, v.Name),
				Subject:  v.DefRange.Ptr(),
			})
			continue
		}
		vals[v.Name] = val
	}
	fileNames := make([]string, 0, len(fileVals))
	for name := range fileVals {
		fileNames = append(fileNames, name)
	}
	sort.Strings(fileNames)
	for _, name := range fileNames {
		if fv := fileVals[name]; seen[name] == (hcl.Range{}) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagWarning,
				Summary:  "Value for undeclared variable",
				Detail:   fmt.Sprintf("The variables file sets %q but the spec declares no variable %q; the value is ignored. Add a variable \"%s\" {} block or remove the line.", name, name, name),
				Subject:  fv.rng.Ptr(),
			})
		}
	}
	for name := range opts.Vars {
		if _, ok := seen[name]; !ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Value for undeclared variable",
				Detail:   fmt.Sprintf("-var %s=... was given but the spec declares no variable %q. Add a variable \"%s\" {} block or drop the flag.", name, name, name),
			})
		}
	}
	ctx.Variables["var"] = cty.ObjectVal(vals)
	return diags
}

// convertFileVar converts a var-file value to the default's type: exactly
// for primitive types; for lists and maps only the shape must match (a
// default's ["a"] is a one-element tuple, a file may give three).
func convertFileVar(v, def cty.Value) (cty.Value, error) {
	t := def.Type()
	seq := func(t cty.Type) bool { return t.IsTupleType() || t.IsListType() || t.IsSetType() }
	obj := func(t cty.Type) bool { return t.IsObjectType() || t.IsMapType() }
	switch {
	case def.IsNull():
		return v, nil
	case t.IsPrimitiveType():
		return convert.Convert(v, t)
	case seq(t) && !seq(v.Type()):
		return cty.NilVal, fmt.Errorf("a list is required")
	case obj(t) && !obj(v.Type()):
		return cty.NilVal, fmt.Errorf("an object is required")
	}
	return v, nil
}

func convertOverride(s string, def cty.Value) (cty.Value, error) {
	if def.IsNull() || def.Type() == cty.String {
		return cty.StringVal(s), nil
	}
	return convert.Convert(cty.StringVal(s), def.Type())
}

func evalLocals(blocks []rawLocals, ctx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	pending := map[string]*hcl.Attribute{}
	for _, b := range blocks {
		for name, a := range b.Attrs {
			if prev, dup := pending[name]; dup {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Duplicate local value",
					Detail:   fmt.Sprintf("Local %q was already defined at %s.", name, prev.Range),
					Subject:  a.Range.Ptr(),
				})
				continue
			}
			pending[name] = a
		}
	}
	vals := map[string]cty.Value{}
	ctx.Variables["local"] = cty.ObjectVal(vals)
	for len(pending) > 0 {
		progress := false
		names := make([]string, 0, len(pending))
		for n := range pending {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			a := pending[name]
			ready := true
			for _, tr := range a.Expr.Variables() {
				if tr.RootName() != "local" || len(tr) < 2 {
					continue
				}
				if at, ok := tr[1].(hcl.TraverseAttr); ok {
					if _, waiting := pending[at.Name]; waiting {
						ready = false
					}
				}
			}
			if !ready {
				continue
			}
			v, d := a.Expr.Value(ctx)
			if !d.HasErrors() {
				if n := valueSize(v, MaxValueBytes); n > MaxValueBytes {
					d = append(d, &hcl.Diagnostic{
						Severity: hcl.DiagError,
						Summary:  "Value too large",
						Detail:   fmt.Sprintf("Local %q: %v.", name, tooBig(n)),
						Subject:  a.Expr.Range().Ptr(),
					})
				}
			}
			diags = append(diags, d...)
			delete(pending, name)
			progress = true
			if !d.HasErrors() {
				vals[name] = v
				ctx.Variables["local"] = cty.ObjectVal(vals)
			}
		}
		if !progress {
			for _, name := range names {
				a := pending[name]
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Cycle in local values",
					Detail:   fmt.Sprintf("Local %q depends, directly or through other locals, on itself. Break the cycle.", name),
					Subject:  a.Range.Ptr(),
				})
			}
			break
		}
	}
	return diags
}

// checkSource refuses control characters and NUL bytes anywhere in the
// spec's source, then nesting deeper than MaxNesting (before the parser,
// which would recurse once per level).
func checkSource(src []byte, path string) hcl.Diagnostics {
	if len(src) > MaxSpecFile {
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Spec too large",
			Detail:   fmt.Sprintf("The spec is %d bytes; specs are limited to %d bytes.", len(src), MaxSpecFile),
		}}
	}
	if err := input.Text(string(src)); err != nil {
		line, col, off := 1, 1, 0
		for i, r := range string(src) {
			if r == 0 || (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f || r == 0xfffd {
				off = i
				break
			}
			if r == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
		}
		return hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Invalid character in spec",
			Detail:   fmt.Sprintf("The spec %v. Write escapes such as \\n inside strings instead of raw control characters, and save the file as UTF-8.", err),
			Subject:  &hcl.Range{Filename: path, Start: hcl.Pos{Line: line, Column: col, Byte: off}, End: hcl.Pos{Line: line, Column: col + 1, Byte: off + 1}},
		}}
	}
	if strings.HasSuffix(path, ".json") {
		return checkNestingJSON(src, path)
	}
	return checkNestingHCL(src, path)
}

func hclIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '_' || r == '-'):
		default:
			return false
		}
	}
	return true
}

// dedupe drops gohcl's follow-up "value must be known" diagnostics that
// repeat an earlier error at the same place.
func dedupe(diags hcl.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	errAt := map[string]bool{}
	key := func(r *hcl.Range) string {
		if r == nil {
			return ""
		}
		return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Byte, r.End.Byte)
	}
	for _, d := range diags {
		if d.Severity == hcl.DiagError && d.Summary != "Unsuitable value type" {
			errAt[key(d.Subject)] = true
		}
	}
	for _, d := range diags {
		if d.Summary == "Unsuitable value type" && strings.Contains(d.Detail, "must be known") && errAt[key(d.Subject)] {
			continue
		}
		out = append(out, d)
	}
	return out
}
