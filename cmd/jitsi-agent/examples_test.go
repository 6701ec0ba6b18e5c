package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCloudInitSpecIsValid extracts the spec embedded in the cloud-init
// example and validates it, so the example cannot rot.
func TestCloudInitSpecIsValid(t *testing.T) {
	b, err := os.ReadFile("../../examples/cloud-init/user-data.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	var spec []string
	in := false
	for i, l := range lines {
		if strings.Contains(l, "path: /etc/jitsi-agent/meet.hcl") {
			for j := i + 1; j < len(lines); j++ {
				if strings.Contains(lines[j], "content: |") {
					in = true
					lines = lines[j+1:]
					break
				}
			}
			break
		}
	}
	if !in {
		t.Fatal("spec not found in user-data")
	}
	for _, l := range lines {
		if l != "" && !strings.HasPrefix(l, "      ") {
			break
		}
		spec = append(spec, strings.TrimPrefix(l, "      "))
	}
	p := filepath.Join(t.TempDir(), "meet.hcl")
	os.WriteFile(p, []byte(strings.Join(spec, "\n")), 0o644)
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	code, out, errs := runCLI(t, "validate", p)
	if code != exitOK {
		t.Fatalf("cloud-init spec invalid:\n%s%s", out, errs)
	}
}
