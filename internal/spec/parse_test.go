package spec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	gohcl "github.com/jitsi-agent/jitsi-agent/internal/hcldecode"
)

// TestCompactTemplateSameAsDecoder: a template block is compacted exactly
// when the struct decoder, without an evaluation context, decodes it
// without any diagnostic, and then to the same values.
func TestCompactTemplateSameAsDecoder(t *testing.T) {
	req := "  source = \"a.tmpl\"\n  destination = \"/srv/app/x\"\n"
	// Every attribute of rawTemplate, so a new field cannot be silently
	// dropped by the compact decoder.
	var every strings.Builder
	rt := reflect.TypeOf(rawTemplate{})
	for i := 0; i < rt.NumField(); i++ {
		name, kind, _ := strings.Cut(rt.Field(i).Tag.Get("hcl"), ",")
		if name == "" || kind == "label" || name == "source" || name == "destination" {
			continue
		}
		switch rt.Field(i).Type.String() {
		case "[]string":
			fmt.Fprintf(&every, "  %s = [\"%s-1\", \"%s-2\"]\n", name, name, name)
		default:
			fmt.Fprintf(&every, "  %s = \"%s-value\"\n", name, name)
		}
	}
	cases := map[string]struct {
		src     string
		compact bool
	}{
		"required only":          {"template \"t\" {\n" + req + "}\n", true},
		"every field":            {"template \"t\" {\n" + req + every.String() + "}\n", true},
		"number as mode":         {"template \"t\" {\n" + req + "  mode = 640\n}\n", true},
		"null owner":             {"template \"t\" {\n" + req + "  owner = null\n}\n", true},
		"constant interpolation": {"template \"t\" {\n" + req + "  check = \"x ${\"y\"} ${1+2}\"\n}\n", true},
		"heredoc":                {"template \"t\" {\n" + req + "  check = <<EOT\nrun it\nEOT\n}\n", true},
		"empty notify":           {"template \"t\" {\n" + req + "  notify = []\n}\n", true},
		"variable":               {"template \"t\" {\n  source = var.src\n  destination = \"/srv/app/x\"\n}\n", false},
		"local in list":          {"template \"t\" {\n" + req + "  notify = [local.unit]\n}\n", false},
		"function":               {"template \"t\" {\n  source = lower(\"A.tmpl\")\n  destination = \"/srv/app/x\"\n}\n", false},
		"conditional":            {"template \"t\" {\n" + req + "  mode = true ? \"0600\" : var.m\n}\n", false},
		"unknown attr":           {"template \"t\" {\n" + req + "  sorce = \"x\"\n}\n", false},
		"missing dest":           {"template \"t\" {\n  source = \"a.tmpl\"\n}\n", false},
		"nested block":           {"template \"t\" {\n" + req + "  inner {}\n}\n", false},
		"two labels":             {"template \"t\" \"u\" {\n" + req + "}\n", false},
		"string notify":          {"template \"t\" {\n" + req + "  notify = \"one.service\"\n}\n", false},
		"for expression":         {"template \"t\" {\n" + req + "  notify = [for u in [\"a\"] : u]\n}\n", false},
		"object mode":            {"template \"t\" {\n" + req + "  mode = { a = 1 }\n}\n", false},
		"null source":            {"template \"t\" {\n  source = null\n  destination = \"/srv/app/x\"\n}\n", false},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			f, d := hclsyntax.ParseConfig([]byte(c.src), "t.hcl", hcl.InitialPos)
			if d.HasErrors() {
				t.Fatal(d)
			}
			blk := f.Body.(*hclsyntax.Body).Blocks[0]
			var want struct {
				Templates []rawTemplate `hcl:"template,block"`
			}
			wd := gohcl.DecodeBody(f.Body, nil, &want)
			got, ok := compactTemplate(blk)
			if ok && len(wd) > 0 {
				t.Fatalf("compacted, but the decoder said %v", wd)
			}
			if ok != c.compact {
				t.Fatalf("compacted %v, want %v", ok, c.compact)
			}
			if !ok {
				return
			}
			w := want.Templates[0]
			if _, isLocated := got.Body.(*locatedBody); !isLocated {
				t.Fatalf("body %T", got.Body)
			}
			for _, attr := range []string{"source", "destination", "mode", "notify", "check", "owner"} {
				if at(got.Body, attr).String() != at(w.Body, attr).String() {
					t.Errorf("%s at %s, decoder %s", attr, at(got.Body, attr), at(w.Body, attr))
				}
			}
			got.Body, w.Body = nil, nil
			if !reflect.DeepEqual(got, w) {
				t.Errorf("compact\n%+v\ndecoder\n%+v", got, w)
			}
		})
	}
}

// TestCompactedTemplatesLocated: in a spec parsed in many pieces, errors in
// compacted templates still point at the attribute (line and column) and
// name the enclosing block, and templates keep their source order.
func TestCompactedTemplatesLocated(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.tmpl"), []byte("x\n"), 0o600)
	var b strings.Builder
	b.WriteString("domain = \"meet.example.com\"\nauth \"anonymous\" {}\n")
	const n = 6000 // several parse pieces
	line := 3
	var badLine, dupLine int
	for i := 0; i < n; i++ {
		mode := "0640"
		if i == n-7 {
			mode = "0646" // world-writable
			badLine = line + 3
		}
		dest := fmt.Sprintf("/srv/app/f%d", i)
		if i == n-1 {
			dest = "/srv/app/f3" // twice
			dupLine = line + 2
		}
		fmt.Fprintf(&b, "template \"t%d\" {\n  source      = \"t.tmpl\"\n  destination = %q\n  mode        = %q\n}\n", i, dest, mode)
		line += 5
	}
	if b.Len() < 2*parseChunk {
		t.Fatalf("spec of %d bytes is parsed in one piece", b.Len())
	}
	p := filepath.Join(dir, "spec.hcl")
	os.WriteFile(p, []byte(b.String()), 0o600)

	parsedSpec, diags := parseHCL([]byte(b.String()), p)
	if diags.HasErrors() || len(parsedSpec.templates) != n || len(parsedSpec.file.Body.(*hclsyntax.Body).Blocks) != 1 {
		t.Fatalf("%v: %d compacted, %d blocks left", diags, len(parsedSpec.templates), len(parsedSpec.file.Body.(*hclsyntax.Body).Blocks))
	}

	res := Load(p, Options{Hostname: func() (string, error) { return "h", nil }})
	var out bytes.Buffer
	res.WriteDiagnostics(&out)
	text := out.String()
	for _, want := range []string{
		fmt.Sprintf("spec.hcl:%d:17, in template", badLine), fmt.Sprintf("in template \"t%d\"", n-7), "World-writable output",
		fmt.Sprintf("spec.hcl:%d:17, in template", dupLine), fmt.Sprintf("templates \"t3\" and \"t%d\" both write", n-1),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, text)
		}
	}
}

// TestMixedTemplatesKeepOrder: templates that need the evaluation context
// (here a variable) are decoded with it; all keep their source order.
func TestMixedTemplatesKeepOrder(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.tmpl"), []byte("x\n"), 0o600)
	src := "domain = \"meet.example.com\"\nauth \"anonymous\" {}\nvariable \"d\" {\n  default = \"/srv/app/b\"\n}\n" +
		"template \"a\" {\n  source = \"t.tmpl\"\n  destination = \"/srv/app/a\"\n}\n" +
		"template \"b\" {\n  source = \"t.tmpl\"\n  destination = var.d\n}\n" +
		"template \"c\" {\n  source = \"t.tmpl\"\n  destination = \"/srv/app/c\"\n}\n"
	p := filepath.Join(dir, "spec.hcl")
	os.WriteFile(p, []byte(src), 0o600)
	res := Load(p, Options{Hostname: func() (string, error) { return "h", nil }})
	if res.HasErrors() {
		t.Fatal(res.Summary())
	}
	var got []string
	for _, tp := range res.Deployment.Templates {
		got = append(got, tp.Name+"="+tp.Destination)
	}
	if want := "a=/srv/app/a b=/srv/app/b c=/srv/app/c"; strings.Join(got, " ") != want {
		t.Errorf("templates %v, want %s", got, want)
	}
}
