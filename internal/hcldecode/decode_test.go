package hcldecode

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

type inner struct {
	Name  string   `hcl:"name,label"`
	Port  int      `hcl:"port,optional"`
	Tags  []string `hcl:"tags,optional"`
	Extra hcl.Body `hcl:",remain"`
}

type outer struct {
	Domain  string            `hcl:"domain"`
	Enabled *bool             `hcl:"enabled,optional"`
	Labels  map[string]string `hcl:"labels,optional"`
	Blocks  []inner           `hcl:"block,block"`
	One     *inner            `hcl:"one,block"`
	Expr    hcl.Expression    `hcl:"expr,optional"`
}

// TestSameAsGohcl: values and diagnostics as gohcl.DecodeBody's.
func TestSameAsGohcl(t *testing.T) {
	for i, src := range []string{
		"domain = \"x\"\nenabled = true\nlabels = { a = \"b\" }\nblock \"p\" {\n  port = 5\n  tags = [\"t\"]\n  other = 1\n}\nblock \"q\" {}\none \"o\" {}\nexpr = 1 + 2\n",
		"domain = \"x\"\n",
		"enabled = \"notabool\"\n",
		"domain = 1\nunknown = 2\nblock {}\n",
		"domain = \"x\"\none \"a\" {}\none \"b\" {}\n",
		"domain = [\"list\"]\nlabels = 3\n",
	} {
		f, diags := hclsyntax.ParseConfig([]byte(src), "t.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		var a, b outer
		da := DecodeBody(f.Body, nil, &a)
		db := gohcl.DecodeBody(f.Body, nil, &b)
		if diagSet(da) != diagSet(db) {
			t.Errorf("%d: diagnostics differ:\n%v\n%v", i, da, db)
		}
		// Bodies and expressions are compared by their source ranges.
		norm := func(o *outer) {
			if o.Expr != nil {
				o.Labels = map[string]string{"expr-range": o.Expr.Range().String()}
				o.Expr = nil
			}
			for j := range o.Blocks {
				o.Blocks[j].Tags = append(o.Blocks[j].Tags, o.Blocks[j].Extra.MissingItemRange().String())
				o.Blocks[j].Extra = nil
			}
			if o.One != nil {
				o.One.Extra = nil
			}
		}
		norm(&a)
		norm(&b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%d: values differ:\n%+v\n%+v", i, a, b)
		}
	}
	got, gp := ImpliedBodySchema(outer{})
	want, wp := gohcl.ImpliedBodySchema(outer{})
	if !reflect.DeepEqual(got, want) || gp != wp {
		t.Errorf("schema differs:\n%+v\n%+v", got, want)
	}
}

// diagSet lists diagnostics in a stable order (both decoders walk a map of
// attributes, so the order of their diagnostics varies between runs).
func diagSet(diags hcl.Diagnostics) string {
	var out []string
	for _, d := range diags {
		out = append(out, fmt.Sprintf("%v|%s|%s|%v", d.Severity, d.Summary, d.Detail, d.Subject))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
