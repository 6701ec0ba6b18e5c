package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/testenv"
)

// testApp is a small program exercising every table feature.
func testApp(got *Call) *App {
	keep := func(c *Call) int { *got = *c; return 0 }
	return &App{
		Name:     "tool",
		Synopsis: "A test tool.",
		Global:   []Flag{{Name: "chdir", Kind: String, Arg: "DIR", Usage: "switch to DIR first", Complete: CompleteDir}},
		Commands: []*Command{
			{Name: "apply", Synopsis: "apply a spec", Args: []Arg{{Name: "SPEC", Complete: CompleteFile, Ext: []string{".hcl"}}},
				Flags: []Flag{
					{Name: "root", Kind: String, Arg: "DIR", Default: "/", Usage: "root directory", Complete: CompleteDir},
					{Name: "q", Kind: Bool, Usage: "quiet"},
					{Name: "var", Kind: Strings, Arg: "NAME=VALUE", Usage: "set a variable"},
					{Name: "var-file", Kind: Strings, Arg: "FILE", Usage: "read variables", Complete: CompleteFile, Ext: []string{".hcl"}},
					{Name: "to", Kind: Int, Default: "-1", Usage: "serial"},
					{Name: "timeout", Kind: Duration, Default: "5s", Usage: "limit"},
					{Name: "log-level", Kind: String, Usage: "level", Complete: CompleteWords, Words: []string{"error", "info"}},
				},
				Help: "Long text that explains.\n\n  example --preformatted\n", Exit: "0 ok, 1 error.", Run: keep},
			{Name: "fmt", Synopsis: "format", Args: []Arg{{Name: "FILE", Optional: true, Repeat: true, Complete: CompleteFile}}, Run: keep},
			{Name: "completion", Synopsis: "print a script", Args: []Arg{{Name: "SHELL", Complete: CompleteWords, Words: []string{"bash", "zsh", "fish"}}}, Run: keep},
			{Name: "token", Synopsis: "tokens", Sub: []*Command{
				{Name: "mint", Synopsis: "mint one", Args: []Arg{{Name: "SPEC", Complete: CompleteFile}}, Flags: []Flag{{Name: "room", Kind: String, Usage: "room"}}, Run: keep},
				{Name: "verify", Synopsis: "verify one", Args: []Arg{{Name: "SPEC"}, {Name: "TOKEN"}}, Run: keep},
			}},
		},
	}
}

func runApp(t *testing.T, args ...string) (code int, call Call, stdout, stderr string) {
	t.Helper()
	a := testApp(&call)
	if err := a.Check(); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code = a.Run(args, strings.NewReader(""), &out, &errb, nil)
	return code, call, out.String(), errb.String()
}

func TestParse(t *testing.T) {
	code, c, _, errs := runApp(t, "-chdir", "/tmp", "apply", "-q", "s.hcl", "--root", "/r", "-var", "a=1", "-var=b=2", "-timeout", "1m", "-var-file", "x.hcl")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if c.Path != "apply" || !slices.Equal(c.Args, []string{"s.hcl"}) || !c.Bool("q") || c.String("root") != "/r" ||
		!slices.Equal(c.Strings("var"), []string{"a=1", "b=2"}) || c.Duration("timeout") != time.Minute || c.Int("to") != -1 ||
		c.Global.String("chdir") != "/tmp" || !c.IsSet("root") || c.IsSet("to") || !slices.Equal(c.Strings("var-file"), []string{"x.hcl"}) {
		t.Fatalf("parsed %+v", c)
	}
	// Defaults, "-" and "--".
	code, c, _, _ = runApp(t, "fmt", "-", "--", "-h")
	if code != 0 || !slices.Equal(c.Args, []string{"-", "-h"}) {
		t.Fatalf("fmt - -- -h: %d %q", code, c.Args)
	}
	if !slices.Equal(c.Raw, []string{"fmt", "-", "--", "-h"}) {
		t.Fatalf("raw %q", c.Raw)
	}
	code, c, _, _ = runApp(t, "-chdir", "d", "token", "verify", "s", "t")
	if code != 0 || c.Path != "token verify" || !slices.Equal(c.Args, []string{"s", "t"}) || !slices.Equal(c.Raw, []string{"token", "verify", "s", "t"}) {
		t.Fatalf("token verify: %d %+v", code, c)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"apply"}, "takes one argument (SPEC), got 0"},
		{[]string{"apply", "a", "b"}, "got 2"},
		{[]string{"apply", "-rot", "x", "s"}, "has no option -rot (did you mean -root?)"},
		{[]string{"apply", "-to", "x", "s"}, "invalid value"},
		{[]string{"aply"}, `Did you mean "apply"?`},
		{[]string{"token"}, "needs a subcommand"},
		{[]string{"token", "mnt"}, `Did you mean "mint"?`},
		{[]string{"-nope", "apply"}, "flag provided but not defined"},
		{[]string{"help", "nope"}, "unknown command"},
	} {
		code, c, _, errs := runApp(t, tc.args...)
		if code != ExitUsage || !strings.Contains(errs, tc.want) || c.Cmd != nil {
			t.Errorf("%q: exit %d ran=%v, stderr:\n%s", tc.args, code, c.Cmd != nil, errs)
		}
	}
	if code, _, out, _ := runApp(t); code != ExitUsage || !strings.Contains(out, "Commands:") {
		t.Errorf("no args: %d %q", code, out)
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"help"}, {"apply", "-h"}, {"apply", "--help"}, {"apply", "s", "-help"}, {"help", "apply"},
		{"token", "-h"}, {"token", "mint", "--help"}, {"help", "token", "mint"}, {"fmt", "-h"},
	} {
		code, c, out, errs := runApp(t, args...)
		if code != 0 || c.Cmd != nil || !strings.HasPrefix(out, "Usage: tool") || errs != "" {
			t.Errorf("%q: exit %d ran=%v\nstdout %s\nstderr %s", args, code, c.Cmd != nil, out, errs)
		}
	}
	_, _, out, _ := runApp(t, "apply", "-h")
	for _, want := range []string{
		"Usage: tool [global options] apply [options] SPEC\n", "  -root DIR", "(default /)", "-var NAME=VALUE", "(repeatable)",
		"  example --preformatted", "Exit status:\n  0 ok, 1 error.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("apply -h lacks %q:\n%s", want, out)
		}
	}
	_, _, out, _ = runApp(t, "help", "token")
	if !strings.Contains(out, "mint") || !strings.Contains(out, "verify one") {
		t.Errorf("help token:\n%s", out)
	}
	_, _, out, _ = runApp(t, "fmt", "-h")
	if !strings.Contains(out, "fmt [FILE...]") {
		t.Errorf("fmt -h:\n%s", out)
	}
}

func TestCheckRejectsBadTables(t *testing.T) {
	var c Call
	a := testApp(&c)
	a.Commands = append(a.Commands, &Command{Name: "apply", Synopsis: "dup", Run: func(*Call) int { return 0 }},
		&Command{Name: "x", Synopsis: "neither"},
		&Command{Name: "y", Synopsis: "order", Args: []Arg{{Name: "A", Optional: true}, {Name: "B"}}, Run: func(*Call) int { return 0 }},
		&Command{Name: "z", Synopsis: "flags", Flags: []Flag{{Name: "f"}, {Name: "f"}}, Run: func(*Call) int { return 0 }})
	err := a.Check()
	for _, want := range []string{`duplicate command "apply"`, `"x" needs exactly one of Run and Sub`, "required argument B after an optional", "duplicate flag -f"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check: %v; want %q", err, want)
		}
	}
}

func TestAccessorPanicsOnUnknownFlag(t *testing.T) {
	_, c, _, _ := runApp(t, "apply", "s")
	defer func() {
		if recover() == nil {
			t.Error("no panic for a flag missing from the table")
		}
	}()
	c.String("nope")
}

// bashComplete sources the generated script in a real bash and runs the
// completion function for the words given, the last being completed.
func bashComplete(t *testing.T, script, dir string, words ...string) []string {
	t.Helper()
	bash := testenv.LookPath(t, "bash", "apt-get install bash")
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = shellWord(w)
	}
	prog := `source "$1"; COMP_WORDS=(` + strings.Join(quoted, " ") + `); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
complete -p tool >/dev/null || exit 3
_tool; printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog, "bash", script)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			got = append(got, l)
		}
	}
	slices.Sort(got)
	return got
}

func TestBashCompletion(t *testing.T) {
	var c Call
	var b bytes.Buffer
	testApp(&c).WriteBash(&b)
	dir := t.TempDir()
	script := filepath.Join(dir, "tool.bash")
	os.WriteFile(script, b.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "site.hcl"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), nil, 0o644)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"tool", ""}, []string{"apply", "completion", "fmt", "help", "token"}},
		{[]string{"tool", "a"}, []string{"apply"}},
		{[]string{"tool", "-chdir", "sub", "a"}, []string{"apply"}},
		{[]string{"tool", "-chdir", ""}, []string{"sub"}},
		{[]string{"tool", "apply", "-r"}, []string{"-root"}},
		{[]string{"tool", "apply", "--ro"}, []string{"--root"}},
		{[]string{"tool", "apply", "-var"}, []string{"-var", "-var-file"}},
		{[]string{"tool", "apply", ""}, []string{"site.hcl", "sub"}},
		{[]string{"tool", "apply", "-q", "-root", "/x", ""}, []string{"site.hcl", "sub"}},
		{[]string{"tool", "apply", "-root", ""}, []string{"sub"}},
		{[]string{"tool", "apply", "-var-file", ""}, []string{"site.hcl", "sub"}},
		{[]string{"tool", "apply", "-log-level", "e"}, []string{"error"}},
		{[]string{"tool", "apply", "-var", ""}, nil},
		{[]string{"tool", "fmt", "n"}, []string{"notes.txt"}},
		{[]string{"tool", "fmt", "x", "n"}, []string{"notes.txt"}},
		{[]string{"tool", "completion", ""}, []string{"bash", "fish", "zsh"}},
		{[]string{"tool", "token", ""}, []string{"mint", "verify"}},
		{[]string{"tool", "token", "mint", "-"}, []string{"-h", "-help", "-room"}},
		{[]string{"tool", "help", "t"}, []string{"token"}},
	} {
		if got := bashComplete(t, script, dir, tc.words...); !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.words, got, tc.want)
		}
	}
}

func TestZshCompletionParses(t *testing.T) {
	zsh := testenv.LookPath(t, "zsh", "apt-get install zsh")
	var c Call
	var b bytes.Buffer
	testApp(&c).WriteZsh(&b)
	script := filepath.Join(t.TempDir(), "_tool")
	os.WriteFile(script, b.Bytes(), 0o644)
	if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s\n%s", err, out, b.String())
	}
	for _, want := range []string{"#compdef tool", `'-root[root directory]:DIR:_files -/'`, `'*-var[set a variable]:NAME=VALUE: '`, `'completion:print a script'`, `':SPEC:_files -g "*(.hcl)"'`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("zsh script lacks %q", want)
		}
	}
}

func TestFishCompletion(t *testing.T) {
	fish := testenv.LookPath(t, "fish", "apt-get install fish")
	var c Call
	var b bytes.Buffer
	testApp(&c).WriteFish(&b)
	dir := t.TempDir()
	script := filepath.Join(dir, "tool.fish")
	os.WriteFile(script, b.Bytes(), 0o644)
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"tool ", []string{"apply", "completion", "fmt", "help", "token"}},
		{"tool token ", []string{"mint", "verify"}},
		{"tool completion ", []string{"bash", "fish", "zsh"}},
		{"tool apply -r", []string{"-root"}},
		{"tool apply -log-level ", []string{"error", "info"}},
	} {
		cmd := exec.Command(fish, "--no-config", "-c", "source $argv[1]; complete -C $argv[2]", script, tc.line)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fish: %v\n%s", err, out)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if w, _, _ := strings.Cut(l, "\t"); w != "" {
				got = append(got, w)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestManPage(t *testing.T) {
	var c Call
	var b bytes.Buffer
	a := testApp(&c)
	a.Version = "v1.0"
	a.Environment = [][2]string{{"TOOL_VAR_x", "sets variable x"}}
	a.WriteMan(&b)
	groff := testenv.LookPath(t, "groff", "apt-get install groff-base")
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = bytes.NewReader(b.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("groff warnings: %v\n%s\n%s", err, out, b.String())
	}
	cmd = exec.Command(groff, "-man", "-Tascii", "-P-c", "-P-b", "-P-u")
	cmd.Stdin = bytes.NewReader(b.Bytes())
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{"tool - A test tool.", "tool [global options] apply [options] SPEC", "-root DIR", "tool [global options] token mint [options] SPEC", "Exit status: 0 ok, 1 error.", "TOOL_VAR_x", "example --preformatted"} {
		if !strings.Contains(text, want) {
			t.Errorf("man page lacks %q:\n%s", want, text)
		}
	}
}
