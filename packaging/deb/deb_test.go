// Package deb holds the tests of the Debian packaging (build.sh, the
// maintainer scripts, `make deb` and `make release`).
package deb

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

const installTools = "apt-get install dpkg-dev fakeroot lintian make"

// release runs `make release` for amd64 into a fresh directory and returns
// it with the names of the files written.
func release(t *testing.T) (string, []string) {
	t.Helper()
	testenv.LookPath(t, "make", installTools)
	testenv.LookPath(t, "dpkg-deb", installTools)
	dist := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "-C", "../..", "release", "DEB_ARCHES=amd64", "DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}
	ents, err := os.ReadDir(dist)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return dist, names
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestReleaseReproducibleLintianClean builds the release set twice from
// this tree and requires identical bytes, a matching SHA256SUMS, the
// expected package layout and a lintian run without any tag.
func TestReleaseReproducibleLintianClean(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package twice")
	}
	d1, n1 := release(t)
	d2, n2 := release(t)
	if strings.Join(n1, " ") != strings.Join(n2, " ") {
		t.Fatalf("two builds wrote different files: %v vs %v", n1, n2)
	}
	var deb, tgz string
	for _, n := range n1 {
		a, _ := os.ReadFile(filepath.Join(d1, n))
		b, _ := os.ReadFile(filepath.Join(d2, n))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds of the same commit", n)
		}
		switch {
		case strings.HasSuffix(n, "_amd64.deb"):
			deb = filepath.Join(d1, n)
		case strings.HasSuffix(n, "_linux_amd64.tar.gz"):
			tgz = filepath.Join(d1, n)
		}
	}
	if deb == "" || tgz == "" {
		t.Fatalf("release wrote %v: want the amd64 .deb, the tarball and SHA256SUMS", n1)
	}
	sums := run(t, d1, "sha256sum", "-c", "SHA256SUMS")
	if strings.Count(sums, ": OK") != 2 {
		t.Errorf("SHA256SUMS does not cover the .deb and the tarball:\n%s", sums)
	}

	// Layout: every file root-owned with the commit's mtime.
	list := run(t, d1, "dpkg-deb", "-c", deb)
	for _, want := range []string{
		"./usr/bin/jitsi-agent", "./usr/libexec/jitsi-agent/jitsi-agent-full", "./usr/libexec/jitsi-agent/jitsi-agent-import",
		"./lib/systemd/system/jitsi-agent.service",
		"./usr/share/man/man1/jitsi-agent.1.gz",
		"./usr/share/bash-completion/completions/jitsi-agent",
		"./usr/share/zsh/vendor-completions/_jitsi-agent",
		"./usr/share/fish/vendor_completions.d/jitsi-agent.fish",
		"./usr/share/doc/jitsi-agent/examples/meet.hcl",
		"./usr/share/doc/jitsi-agent/examples/cloud-init/user-data.yaml",
		"./usr/share/doc/jitsi-agent/copyright", "./usr/share/doc/jitsi-agent/changelog.gz",
	} {
		if !strings.Contains(list, " "+want+"\n") {
			t.Errorf("package lacks %s:\n%s", want, list)
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(list), "\n") {
		if !strings.Contains(l, " root/root ") {
			t.Errorf("not root/root: %s", l)
		}
	}
	// The unit points at the packaged binary and waits for a spec.
	x := t.TempDir()
	run(t, d1, "dpkg-deb", "-x", deb, x)
	unit, err := os.ReadFile(filepath.Join(x, "lib/systemd/system/jitsi-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ExecStart=/usr/bin/jitsi-agent run /etc/jitsi-agent/meet.hcl", "ConditionPathExists=/etc/jitsi-agent/meet.hcl"} {
		if !strings.Contains(string(unit), want+"\n") {
			t.Errorf("packaged unit lacks %q", want)
		}
	}
	if strings.Contains(string(unit), "/usr/local/bin") {
		t.Error("packaged unit still names /usr/local/bin")
	}
	// The binary runs and its man page is the command table's.
	if out := run(t, x, filepath.Join(x, "usr/bin/jitsi-agent"), "man"); !strings.Contains(out, ".TH") {
		t.Errorf("packaged binary's man output is not a man page: %.200s", out)
	}

	// The launcher runs the packaged jitsi-agent-full for the commands it
	// does not answer itself (unit prints the embedded unit), with the
	// same version stamp.
	unitCmd := exec.Command(filepath.Join(x, "usr/bin/jitsi-agent"), "unit")
	unitCmd.Env = append(os.Environ(), "JITSI_AGENT_EXEC_PATH=")
	if out, err := unitCmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "[Service]") {
		t.Errorf("packaged unit command through the launcher: %v\n%s", err, out)
	}
	launcherVersion := run(t, x, filepath.Join(x, "usr/bin/jitsi-agent"), "version")
	if fullVersion := run(t, x, filepath.Join(x, "usr/libexec/jitsi-agent/jitsi-agent-full"), "version"); fullVersion != launcherVersion {
		t.Errorf("the launcher and jitsi-agent-full carry different versions:\n%s\n%s", launcherVersion, fullVersion)
	}

	// import runs the packaged jitsi-agent-import (an empty root: it gets
	// as far as looking for Prosody's configuration).
	imp := exec.Command(filepath.Join(x, "usr/bin/jitsi-agent"), "import", "-root", t.TempDir(), "-out", filepath.Join(t.TempDir(), "s.hcl"))
	imp.Env = append(os.Environ(), "JITSI_AGENT_EXEC_PATH=")
	if out, _ := imp.CombinedOutput(); strings.Contains(string(out), "was not found") || !strings.Contains(string(out), "Nothing was written") {
		t.Errorf("packaged import did not run jitsi-agent-import:\n%s", out)
	}

	lintian := testenv.LookPath(t, "lintian", installTools)
	out, err := exec.Command(lintian, "--tag-display-limit", "0", "-I", "--fail-on", "error,warning,info", deb).CombinedOutput()
	var tags []string
	for _, l := range strings.Split(string(out), "\n") {
		if len(l) > 2 && l[1] == ':' && strings.Contains("EWIPX", l[:1]) {
			tags = append(tags, l)
		}
	}
	if err != nil || len(tags) > 0 {
		t.Errorf("lintian is not clean (fix it or add a justified override to packaging/deb/lintian-overrides): %v\n%s", err, out)
	}
}

// TestDebVersion: git describe output becomes a valid native Debian version;
// an abbreviated hash that starts with a digit is not taken for a tag.
func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3":         "1.2.3",
		"v1.2.3-4-gabc1": "1.2.3+4.gabc1",
		"1323ef4":        "0~git20261127.1323ef4",
		"1323ef4-dirty":  "0~git20261127.1323ef4+dirty",
		"abc1234":        "0~git20261127.abc1234",
	} {
		cmd := exec.Command("../debversion.sh", in)
		cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1795779257")
		out, err := cmd.Output()
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			t.Errorf("debversion.sh %s = %q, %v; want %q", in, got, err, want)
		}
	}
}
