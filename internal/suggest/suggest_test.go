package suggest

import "testing"

func TestClosest(t *testing.T) {
	opts := []string{"apply", "plan", "validate", "app_secret"}
	for in, want := range map[string]string{
		"aply":       "apply",
		"valdiate":   "validate",
		"app_secrt":  "app_secret",
		"xyz":        "",
		"completely": "",
	} {
		if got := Closest(in, opts); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
	if d := Distance("kitten", "sitting"); d != 3 {
		t.Errorf("Distance = %d, want 3", d)
	}
}
