package render

import (
	"bytes"
	"fmt"
	"sync"
	"text/template"
	"text/template/parse"
)

// Limits on one user template's execution. Render is pure (no clock), so
// time is bounded by counting: every iteration of every range spends one
// step, and the output is capped. Without them a nested range over a large
// integer ran for minutes and ran out of memory.
const (
	// MaxTemplateSteps is how many range iterations one execution may run.
	MaxTemplateSteps = 100_000
	// MaxTemplateOutput is the largest file a user template may produce.
	MaxTemplateOutput = 4 << 20
)

// stepFunc is the name of the function instrument() calls.
const stepFunc = "jitsiAgentStep"

// budget is the remaining allowance of one execution.
type budget struct{ steps int }

var (
	errSteps  = fmt.Errorf("the template ran more than %d range iterations; nested ranges over large lists or numbers are limited", MaxTemplateSteps)
	errOutput = fmt.Errorf("the output is larger than %d bytes; user template outputs are limited", MaxTemplateOutput)
)

// step spends one step of the execution's budget ($ is the root data).
func step(td *TemplateData) (string, error) {
	if td == nil || td.budget == nil {
		return "", nil // a built-in template or a test's own data
	}
	td.budget.steps--
	if td.budget.steps < 0 {
		return "", errSteps
	}
	return "", nil
}

// stepNode is "{{jitsiAgentStep $}}", parsed once, on first use (user
// templates only; not at every start).
var stepNode = sync.OnceValue(func() *parse.ActionNode {
	t := template.Must(template.New("step").Funcs(funcMap).Parse("{{" + stepFunc + " $}}"))
	return t.Tree.Root.Nodes[0].(*parse.ActionNode)
})

// instrument puts a step at the start of every range body of every
// template defined by t.
func instrument(t *template.Template) error {
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Tree.Root == nil {
			continue
		}
		instrumentNode(tt.Tree.Root)
	}
	return nil
}

func instrumentNode(n parse.Node) {
	switch x := n.(type) {
	case *parse.ListNode:
		if x == nil {
			return
		}
		for _, c := range x.Nodes {
			instrumentNode(c)
		}
	case *parse.RangeNode:
		instrumentNode(x.List)
		instrumentNode(x.ElseList)
		if x.List != nil {
			x.List.Nodes = append([]parse.Node{stepNode()}, x.List.Nodes...)
		}
	case *parse.IfNode:
		instrumentNode(x.List)
		instrumentNode(x.ElseList)
	case *parse.WithNode:
		instrumentNode(x.List)
		instrumentNode(x.ElseList)
	}
}

// limitedWriter refuses to grow buf past limit.
type limitedWriter struct {
	buf   *bytes.Buffer
	limit int
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.limit {
		return 0, errOutput
	}
	return w.buf.Write(p)
}
