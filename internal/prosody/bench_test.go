package prosody

import "testing"

// BenchmarkClassify: model both rendered configs and classify the change
// (what every apply that touches Prosody's config does before the shell).
func BenchmarkClassify(b *testing.B) {
	old := renderedSrc(b, secretA, false, 10)
	new := renderedSrc(b, secretB, true, 2)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		mo, err := ModelOf(old)
		if err != nil {
			b.Fatal(err)
		}
		mn, err := ModelOf(new)
		if err != nil {
			b.Fatal(err)
		}
		if Classify(mo, mn).Empty() {
			b.Fatal("no change")
		}
	}
}
