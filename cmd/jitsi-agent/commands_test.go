package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/cli"
	"github.com/jitsi-agent/jitsi-agent/internal/commands"
	"github.com/jitsi-agent/jitsi-agent/internal/doctor"
	"github.com/jitsi-agent/jitsi-agent/internal/fleet"
	"github.com/jitsi-agent/jitsi-agent/internal/fleetstore"
	"github.com/jitsi-agent/jitsi-agent/internal/planfile"
	"github.com/jitsi-agent/jitsi-agent/internal/spec"
	"github.com/jitsi-agent/jitsi-agent/internal/stamp"
	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

func TestCommandTableIsConsistent(t *testing.T) {
	if err := newApp().Check(); err != nil {
		t.Fatal(err)
	}
}

// commandPaths lists "apply", "token mint", ... from the table.
func commandPaths(cs []*cli.Command, prefix string) []string {
	var out []string
	for _, c := range cs {
		p := strings.TrimSpace(prefix + " " + c.Name)
		out = append(out, p)
		out = append(out, commandPaths(c.Sub, p)...)
	}
	return out
}

// TestEveryCommandHasHelp: -h, --help and "help CMD" print the generated
// help on stdout and exit 0 for every command, without running it.
func TestEveryCommandHasHelp(t *testing.T) {
	paths := commandPaths(newApp().Commands, "")
	if len(paths) < 18 {
		t.Fatalf("only %d commands: %v", len(paths), paths)
	}
	for _, p := range paths {
		words := strings.Fields(p)
		for _, args := range [][]string{append(words, "-h"), append(words, "--help"), append([]string{"help"}, words...)} {
			code, out, errs := runCLI(t, args...)
			if code != exitOK || !strings.HasPrefix(out, "Usage: jitsi-agent [global options] "+p) || errs != "" {
				t.Errorf("%q: exit %d\nstdout %s\nstderr %s", args, code, out, errs)
			}
		}
	}
	code, out, _ := runCLI(t, "apply", "-h")
	for _, want := range []string{"-var-file FILE", "-root DIR", "(default /)", "Exit status:"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("apply -h lacks %q:\n%s", want, out)
		}
	}
}

func TestBadFlagIsUsageError(t *testing.T) {
	code, out, errs := runCLI(t, "plan", "../../examples/meet.hcl", "-rot", "/")
	if code != exitError || out != "" || !strings.Contains(errs, "did you mean -root?") || !strings.Contains(errs, "Usage: jitsi-agent") {
		t.Errorf("%d %q %q", code, out, errs)
	}
}

// TestCompletionBashReal: the real table's bash script, sourced in bash.
func TestCompletionBashReal(t *testing.T) {
	bash := testenv.LookPath(t, "bash", "apt-get install bash")
	code, script, _ := runCLI(t, "completion", "bash")
	if code != exitOK {
		t.Fatal(code)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "c.bash"), []byte(script), 0o644)
	os.WriteFile(filepath.Join(dir, "site.hcl"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "vars.txt"), nil, 0o644)
	for words, want := range map[string]string{
		"jitsi-agent va":                 "validate",
		"jitsi-agent plan -var-f":        "-var-file",
		"jitsi-agent apply ":             "c.bash site.hcl vars.txt", // SPEC or PLANFILE: any file
		"jitsi-agent plan ":              "site.hcl",
		"jitsi-agent plan -var-file ":    "site.hcl",
		"jitsi-agent token m":            "mint",
		"jitsi-agent completion ":        "bash fish zsh",
		"jitsi-agent run -log-level d":   "debug",
		"jitsi-agent -chdir . validate ": "site.hcl",
		"jitsi-agent help to":            "token",
	} {
		prog := `source c.bash; COMP_WORDS=(` + words + ` ''); [[ "${COMP_WORDS[-2]}" == "" ]] && unset 'COMP_WORDS[-1]'
COMP_WORDS=(` + words + `); [[ "` + words + `" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _jitsi_agent; printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '`
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Errorf("%q: got %q (%v), want %q", words, out, err, want)
		}
	}
	// zsh parses its script; fish completes from it.
	zsh := testenv.LookPath(t, "zsh", "apt-get install zsh")
	_, script, _ = runCLI(t, "completion", "zsh")
	os.WriteFile(filepath.Join(dir, "_jitsi-agent"), []byte(script), 0o644)
	if out, err := exec.Command(zsh, "-n", filepath.Join(dir, "_jitsi-agent")).CombinedOutput(); err != nil {
		t.Errorf("zsh -n: %v\n%s", err, out)
	}
	fish := testenv.LookPath(t, "fish", "apt-get install fish")
	_, script, _ = runCLI(t, "completion", "fish")
	os.WriteFile(filepath.Join(dir, "c.fish"), []byte(script), 0o644)
	out, err := exec.Command(fish, "--no-config", "-c", "source $argv[1]; complete -C 'jitsi-agent token '", filepath.Join(dir, "c.fish")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "mint\t") || !strings.Contains(string(out), "verify\t") {
		t.Errorf("fish: %v\n%s", err, out)
	}
	if code, _, errs := runCLI(t, "completion", "tcsh"); code != exitError || !strings.Contains(errs, "bash, zsh and fish") {
		t.Errorf("completion tcsh: %d %s", code, errs)
	}
}

func TestManPageRenders(t *testing.T) {
	groff := testenv.LookPath(t, "groff", "apt-get install groff-base")
	code, page, _ := runCLI(t, "man")
	if code != exitOK {
		t.Fatal(code)
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("groff -ww: %v\n%s", err, out)
	}
	cmd = exec.Command(groff, "-man", "-Tascii", "-P-cbu")
	cmd.Stdin = strings.NewReader(page)
	raw, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	out := []byte(strings.Join(strings.Fields(string(raw)), " "))
	for _, p := range commandPaths(newApp().Commands, "") {
		if c := newApp().Find(p); len(c.Sub) == 0 && !bytes.Contains(out, []byte("jitsi-agent [global options] "+p)) {
			t.Errorf("man page lacks %s", p)
		}
	}
	for _, want := range []string{"JITSI_AGENT_VAR_NAME", "-var-file FILE", "-chdir DIR"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("man page lacks %q", want)
		}
	}
}

// TestInitStarterValidates: init writes a spec that validates, refuses to
// overwrite it, and the spec is already formatted.
func TestInitStarterValidates(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	dir := filepath.Join(t.TempDir(), "site")
	if code, out, errs := runCLI(t, "init", dir, "-domain", "video.example.org"); code != exitOK || !strings.Contains(out, "jitsi-agent.hcl") {
		t.Fatalf("init: %d %s %s", code, out, errs)
	}
	p := filepath.Join(dir, "jitsi-agent.hcl")
	code, out, errs := runCLI(t, "validate", p)
	if code != exitOK || errs != "" || !strings.Contains(out, "Success!") {
		t.Fatalf("starter spec does not validate cleanly: %d\n%s\n%s", code, out, errs)
	}
	if code, out, _ := runCLI(t, "fmt", "-check", p); code != exitOK {
		t.Errorf("starter spec is not formatted: %s", out)
	}
	b, _ := os.ReadFile(p)
	if !strings.Contains(string(b), `default     = "video.example.org"`) {
		t.Error("domain not used")
	}
	if code, _, errs := runCLI(t, "init", dir); code != exitError || !strings.Contains(errs, "exists") {
		t.Errorf("second init: %d %s", code, errs)
	}
	if code, _, _ := runCLI(t, "init", dir, "-force"); code != exitOK {
		t.Error("init -force")
	}
	if code, _, errs := runCLI(t, "init", dir, "-force", "-domain", `x" }`); code != exitError || !strings.Contains(errs, "not a lower-case DNS name") {
		t.Errorf("bad domain: %d %s", code, errs)
	}
}

func TestFmtRecursiveAndStdin(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	os.MkdirAll(filepath.Join(dir, ".git"), 0o755)
	top, deep, hidden := filepath.Join(dir, "top.hcl"), filepath.Join(dir, "a", "b", "deep.hcl"), filepath.Join(dir, ".git", "x.hcl")
	for _, p := range []string{top, deep, hidden} {
		os.WriteFile(p, []byte("domain=\"x\"\n"), 0o644)
	}
	if code, out, _ := runCLI(t, "fmt", dir); code != exitOK || !strings.Contains(out, "top.hcl") || strings.Contains(out, "deep.hcl") {
		t.Errorf("fmt DIR: %d %q", code, out)
	}
	if code, out, _ := runCLI(t, "fmt", "-check", "-recursive", dir); code != exitError || !strings.Contains(out, "deep.hcl") || strings.Contains(out, "top.hcl") {
		t.Errorf("fmt -check -recursive: %d %q", code, out)
	}
	if code, _, _ := runCLI(t, "fmt", "-recursive", dir); code != exitOK {
		t.Error("fmt -recursive")
	}
	if b, _ := os.ReadFile(deep); string(b) != "domain = \"x\"\n" {
		t.Errorf("deep not formatted: %q", b)
	}
	if b, _ := os.ReadFile(hidden); string(b) != "domain=\"x\"\n" {
		t.Error("a hidden directory was formatted")
	}
	var out, errb bytes.Buffer
	if code := run([]string{"fmt", "-"}, strings.NewReader("a=1\nbb = 2\n"), &out, &errb); code != exitOK || out.String() != "a  = 1\nbb = 2\n" {
		t.Errorf("fmt -: %d %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"fmt", "-check", "-"}, strings.NewReader("a=1\n"), &out, &errb); code != exitError || out.Len() != 0 {
		t.Errorf("fmt -check -: %d %q", code, out.String())
	}
	if code := run([]string{"fmt", "-"}, strings.NewReader("a = \n"), &out, &errb); code != exitError {
		t.Errorf("fmt - of broken input: %d", code)
	}
}

// TestChdirAndVarFile: -chdir makes relative paths relative to DIR;
// -var-file sets variables below -var.
func TestChdirAndVarFile(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	t.Chdir(t.TempDir()) // restores the working directory afterwards
	dir := t.TempDir()
	if code, _, errs := runCLI(t, "init", dir); code != exitOK {
		t.Fatal(errs)
	}
	os.WriteFile(filepath.Join(dir, "prod.hcl"), []byte("domain = \"prod.example.org\"\n"), 0o644)
	code, out, errs := runCLI(t, "-chdir", dir, "render", "jitsi-agent.hcl", "-var-file", "prod.hcl", "-out", "out", "-q")
	if code != exitOK {
		t.Fatalf("%d %s %s", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "out/etc/prosody/conf.avail/prod.example.org.cfg.lua")); err != nil {
		t.Errorf("var file not applied or -chdir not honoured: %v", err)
	}
	code, out, _ = runCLI(t, "-chdir", dir, "validate", "jitsi-agent.hcl", "-var-file", "prod.hcl", "-var", "domain=flag.example.org")
	if code != exitOK || !strings.Contains(out, "Success!") {
		t.Fatalf("validate after -chdir: %d %s", code, out)
	}
	if code, _, errs := runCLI(t, "-chdir", filepath.Join(dir, "nope"), "version"); code != exitError || !strings.Contains(errs, "-chdir") {
		t.Errorf("bad -chdir: %d %s", code, errs)
	}
}

func TestValidateJSON(t *testing.T) {
	t.Setenv("JITSI_APP_SECRET", cliSecret)
	code, out, errs := runCLI(t, "validate", "-json", "../../examples/meet.hcl")
	if code != exitOK || errs != "" {
		t.Fatalf("valid example: %d %s %s", code, out, errs)
	}
	var rep struct {
		Valid       bool `json:"valid"`
		ErrorCount  int  `json:"error_count"`
		Diagnostics []struct {
			Severity, Summary string
			Range             *struct {
				Filename string
				Start    struct{ Line, Column, Byte int }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.Valid || rep.Diagnostics == nil {
		t.Fatalf("%v %s", err, out)
	}
	p := filepath.Join(t.TempDir(), "bad.hcl")
	inline := "inline-secret-0123456789abcdef0123456789abcdef"
	os.WriteFile(p, []byte("domain = \"meet.example.com\"\nauth \"jwt\" {\n  app_id = \"a\"\n  app_secret = \""+inline+"\"\n  bogus = 1\n}\n"), 0o644)
	code, out, errs = runCLI(t, "validate", p, "-json")
	if code != exitError || errs != "" {
		t.Fatalf("invalid spec: %d %s", code, errs)
	}
	if strings.Contains(out, inline) {
		t.Fatal("the inline secret is in the JSON")
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Valid || rep.ErrorCount == 0 {
		t.Fatalf("%v %s", err, out)
	}
	found := false
	for _, d := range rep.Diagnostics {
		if d.Severity == "error" && d.Range != nil && d.Range.Filename == p && d.Range.Start.Line == 5 && d.Range.Start.Column == 3 {
			found = true
		}
	}
	if !found {
		t.Errorf("no error at bad.hcl:5:3:\n%s", out)
	}
}

// TestVersionStamped: the -X flags `make build` passes reach `version`.
func TestVersionStamped(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "jitsi-agent")
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags",
		"-X main.version=v9.9.9 -X main.commit=0123456789abcdef -X main.date=2026-01-02T03:04:05Z", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"jitsi-agent v9.9.9\n", "commit:  0123456789abcdef\n", "built:   2026-01-02T03:04:05Z\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("version lacks %q:\n%s", want, out)
		}
	}
}

// The command table (internal/commands, which must stay light) repeats a
// few values of other packages; they must agree.
func TestCommandTableConstants(t *testing.T) {
	for name, pair := range map[string][2]any{
		"VarEnvPrefix":          {commands.VarEnvPrefix, spec.VarEnvPrefix},
		"StateDir":              {commands.StateDir, spec.DefaultStateDir},
		"DoctorJSONVersion":     {commands.DoctorJSONVersion, doctor.JSONVersion},
		"FleetKeyFile":          {commands.FleetKeyFile, fleet.DefaultKeyFile},
		"FleetClusterSecretEnv": {commands.FleetClusterSecretEnv, fleet.ClusterSecretEnv},
		"EtcdPrefix":            {commands.EtcdPrefix, fleetstore.DefaultPrefix},
		"NoopStamp":             {stamp.Name, planfile.NoopStamp},
	} {
		if pair[0] != pair[1] {
			t.Errorf("commands.%s = %v, its source says %v", name, pair[0], pair[1])
		}
	}
}
