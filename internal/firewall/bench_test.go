package firewall

import (
	"context"
	"testing"
)

func BenchmarkRender(b *testing.B) {
	r := testRules(22)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyNoop is the cost of an apply whose ruleset is already live
// (every daemon pass): nft -c, list tables, two listings, a compare.
func BenchmarkApplyNoop(b *testing.B) {
	benchLab(b, func(l *lab, m *Manager, script []byte) {
		for b.Loop() {
			res, err := m.Apply(context.Background(), script, 0)
			if err != nil || res.Changed {
				b.Fatalf("%v %v", res.Changed, err)
			}
		}
	})
}

// BenchmarkApplyChange alternates two rulesets: check, snapshot, load,
// read back, record.
func BenchmarkApplyChange(b *testing.B) {
	other, err := Render(testRules(2222))
	if err != nil {
		b.Fatal(err)
	}
	benchLab(b, func(l *lab, m *Manager, script []byte) {
		i := 0
		for b.Loop() {
			s := script
			if i%2 == 0 {
				s = other
			}
			i++
			if _, err := m.Apply(context.Background(), s, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchLab(b *testing.B, f func(*lab, *Manager, []byte)) {
	l := newLab(b)
	m := &Manager{Nft: l.nft, Dir: b.TempDir()}
	script, err := Render(testRules(22))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Apply(context.Background(), script, 0); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	f(l, m, script)
}
