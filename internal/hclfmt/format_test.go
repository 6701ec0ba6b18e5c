package hclfmt

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclwrite"
)

// TestSameAsHCLWrite: byte for byte hclwrite.Format on every HCL file of
// the repository and on awkward snippets.
func TestSameAsHCLWrite(t *testing.T) {
	inputs := map[string][]byte{
		"empty":     nil,
		"unaligned": []byte("a=1\nbbb = 2\n  c   =   [1,2,\n3]\nblock   \"x\" {\nk=v\n  # comment\n}\n"),
		"heredoc":   []byte("x = <<EOT\n  keep   this\nEOT\ny={a=1,bb=2}\n"),
		"template":  []byte("x = \"${var.a}-%{ if true }y%{ endif }\"\nz = a ? b : c\nw = !x && y||z\n"),
		"unicode":   []byte("ä = \"ü\"\nlonger_name = \"日本\"\n"),
		"broken":    []byte("a = \n}{\n\"unterminated\n"),
	}
	err := filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && p != "../.." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".hcl") {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			inputs[p] = b
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < 10 {
		t.Fatalf("only %d inputs", len(inputs))
	}
	for name, src := range inputs {
		if got, want := Format(src), hclwrite.Format(src); !bytes.Equal(got, want) {
			t.Errorf("%s: differs from hclwrite.Format\ngot:\n%s\nwant:\n%s", name, got, want)
		}
	}
}

func FuzzSameAsHCLWrite(f *testing.F) {
	f.Add([]byte("a=1\nb = {c=2}\n"))
	f.Add([]byte("x \"y\" {\nz=[1,\n2]\n}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if got, want := Format(src), hclwrite.Format(src); !bytes.Equal(got, want) {
			t.Errorf("differs for %q:\n%q\n%q", src, got, want)
		}
	})
}
