// Package cli describes a program's commands as data (name, synopsis,
// positional arguments, flags, help text, exit status) and derives from that
// one description everything that must agree with it: the argument parser,
// the usage and -h/--help text, shell completion scripts (bash, zsh, fish)
// and a roff man page. It is Terraform's command/arguments pattern with the
// arguments in a table instead of one parse function per command.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/suggest"
)

// Kind is a flag's value type.
type Kind int

// Flag kinds.
const (
	Bool     Kind = iota // -name (no value)
	String               // -name VALUE
	Int                  // -name N
	Duration             // -name 5s
	Strings              // -name VALUE, repeatable; values kept in order
)

// Complete says what a flag value or a positional argument completes to.
type Complete int

// Completion kinds.
const (
	CompleteNone  Complete = iota
	CompleteFile           // any file (Ext narrows it)
	CompleteDir            // directories
	CompleteWords          // the Words listed
)

// Flag is one option of a command.
type Flag struct {
	Name     string // without dashes; -name and --name are the same flag
	Kind     Kind
	Arg      string // placeholder for the value in help ("DIR"); Bool ignores it
	Default  string // textual default, parsed as Kind ("" = the zero value)
	Usage    string // one sentence, no trailing period needed
	Complete Complete
	Ext      []string // CompleteFile: file name suffixes offered (".hcl")
	Words    []string // CompleteWords
}

// Arg is one positional argument.
type Arg struct {
	Name     string // placeholder ("SPEC")
	Optional bool
	Repeat   bool // the last argument may repeat
	Complete Complete
	Ext      []string
	Words    []string
}

// Command is one (sub)command. A command with Sub dispatches on its first
// argument and has no Run of its own.
type Command struct {
	Name     string
	Synopsis string // one line, for command lists and the man page's NAME
	Args     []Arg
	Flags    []Flag
	Help     string // paragraphs separated by blank lines
	Exit     string // exit status, one sentence
	Sub      []*Command
	Run      func(*Call) int
}

// App is the whole program.
type App struct {
	Name     string
	Synopsis string
	Help     string
	Global   []Flag // options before the command (-chdir)
	Commands []*Command
	// Environment lists environment variables for the man page (name, text).
	Environment [][2]string
	Version     string
}

// Exit codes the parser itself returns.
const (
	ExitOK    = 0
	ExitUsage = 1
)

// Call is one parsed invocation handed to a command's Run.
type Call struct {
	App  *App
	Cmd  *Command
	Path string   // "token mint"
	Args []string // positional arguments
	// Raw is the command line from the command's name on, as given (the
	// global options before it left out): what a program that hands the
	// call to another one passes on.
	Raw    []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Global *Values
	*Values
}

// Values holds parsed flag values by name.
type Values struct {
	flags map[string]*Flag
	vals  map[string]any // *bool, *string, *int, *time.Duration, *[]string
	set   map[string]bool
}

func (v *Values) get(name string, k Kind) any {
	f, ok := v.flags[name]
	if !ok || f.Kind != k {
		panic(fmt.Sprintf("cli: no %v flag -%s in this command's table", k, name))
	}
	return v.vals[name]
}

// Bool returns a Bool flag's value.
func (v *Values) Bool(name string) bool { return *v.get(name, Bool).(*bool) }

// String returns a String flag's value.
func (v *Values) String(name string) string { return *v.get(name, String).(*string) }

// Int returns an Int flag's value.
func (v *Values) Int(name string) int { return *v.get(name, Int).(*int) }

// Duration returns a Duration flag's value.
func (v *Values) Duration(name string) time.Duration {
	return *v.get(name, Duration).(*time.Duration)
}

// Strings returns a repeatable flag's values in command-line order.
func (v *Values) Strings(name string) []string { return *v.get(name, Strings).(*[]string) }

// IsSet reports whether the flag was given on the command line.
func (v *Values) IsSet(name string) bool {
	if _, ok := v.flags[name]; !ok {
		panic(fmt.Sprintf("cli: no flag -%s in this command's table", name))
	}
	return v.set[name]
}

func (k Kind) String() string {
	return [...]string{"bool", "string", "int", "duration", "repeatable string"}[k]
}

// Usagef reports a usage error: the message, the command's usage line and
// where to find more, on stderr. It returns ExitUsage.
func (c *Call) Usagef(format string, a ...any) int {
	fmt.Fprintf(c.Stderr, "Error: %s\n\n", fmt.Sprintf(format, a...))
	fmt.Fprintf(c.Stderr, "Usage: %s\nRun '%s %s -h' for its options.\n", c.App.usageLine(c.Path, c.Cmd), c.App.Name, c.Path)
	return ExitUsage
}

type stringsValue struct{ p *[]string }

func (s stringsValue) String() string {
	if s.p == nil {
		return ""
	}
	return strings.Join(*s.p, ",")
}
func (s stringsValue) Set(v string) error { *s.p = append(*s.p, v); return nil }

// newFlagSet builds a flag.FlagSet from the table.
func newFlagSet(name string, flags []Flag) (*flag.FlagSet, *Values, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	v := &Values{flags: map[string]*Flag{}, vals: map[string]any{}, set: map[string]bool{}}
	for i := range flags {
		f := &flags[i]
		if _, dup := v.flags[f.Name]; dup {
			return nil, nil, fmt.Errorf("cli: %s: duplicate flag -%s", name, f.Name)
		}
		v.flags[f.Name] = f
		switch f.Kind {
		case Bool:
			p := new(bool)
			*p = f.Default == "true"
			fs.BoolVar(p, f.Name, *p, f.Usage)
			v.vals[f.Name] = p
		case String:
			p := new(string)
			fs.StringVar(p, f.Name, f.Default, f.Usage)
			v.vals[f.Name] = p
		case Int:
			p := new(int)
			if f.Default != "" {
				n, err := strconv.Atoi(f.Default)
				if err != nil {
					return nil, nil, fmt.Errorf("cli: %s: flag -%s: default %q: %w", name, f.Name, f.Default, err)
				}
				*p = n
			}
			fs.IntVar(p, f.Name, *p, f.Usage)
			v.vals[f.Name] = p
		case Duration:
			p := new(time.Duration)
			if f.Default != "" {
				d, err := time.ParseDuration(f.Default)
				if err != nil {
					return nil, nil, fmt.Errorf("cli: %s: flag -%s: default %q: %w", name, f.Name, f.Default, err)
				}
				*p = d
			}
			fs.DurationVar(p, f.Name, *p, f.Usage)
			v.vals[f.Name] = p
		case Strings:
			p := new([]string)
			fs.Var(stringsValue{p}, f.Name, f.Usage)
			v.vals[f.Name] = p
		default:
			return nil, nil, fmt.Errorf("cli: %s: flag -%s: unknown kind %d", name, f.Name, f.Kind)
		}
	}
	return fs, v, nil
}

// parse parses flags placed before, between or after positional arguments;
// "--" ends the flags and "-" is a positional argument (stdin).
func parse(fs *flag.FlagSet, v *Values, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	fs.Visit(func(f *flag.Flag) { v.set[f.Name] = true })
	return pos, nil
}

// Check reports inconsistencies in the table (duplicate names, a command
// with neither Run nor Sub, a required argument after an optional one).
func (a *App) Check() error {
	var errs []error
	if _, _, err := newFlagSet(a.Name, a.Global); err != nil {
		errs = append(errs, err)
	}
	var walk func(path string, cs []*Command)
	walk = func(path string, cs []*Command) {
		seen := map[string]bool{}
		for _, c := range cs {
			p := strings.TrimSpace(path + " " + c.Name)
			if seen[c.Name] {
				errs = append(errs, fmt.Errorf("cli: duplicate command %q", p))
			}
			seen[c.Name] = true
			if (c.Run == nil) == (len(c.Sub) == 0) {
				errs = append(errs, fmt.Errorf("cli: command %q needs exactly one of Run and Sub", p))
			}
			if c.Synopsis == "" {
				errs = append(errs, fmt.Errorf("cli: command %q has no synopsis", p))
			}
			if _, _, err := newFlagSet(p, c.Flags); err != nil {
				errs = append(errs, err)
			}
			optional := false
			for i, arg := range c.Args {
				if arg.Optional {
					optional = true
				} else if optional {
					errs = append(errs, fmt.Errorf("cli: command %q: required argument %s after an optional one", p, arg.Name))
				}
				if arg.Repeat && i != len(c.Args)-1 {
					errs = append(errs, fmt.Errorf("cli: command %q: only the last argument may repeat", p))
				}
			}
			walk(p, c.Sub)
		}
	}
	walk("", a.Commands)
	return errors.Join(errs...)
}

// Find returns the command at path ("token mint"), or nil.
func (a *App) Find(path string) *Command {
	cs := a.Commands
	var c *Command
	for _, name := range strings.Fields(path) {
		i := slices.IndexFunc(cs, func(c *Command) bool { return c.Name == name })
		if i < 0 {
			return nil
		}
		c = cs[i]
		cs = c.Sub
	}
	return c
}

func isHelp(s string) bool { return s == "-h" || s == "-help" || s == "--help" }

// Run parses args (without the program name) and runs the command they
// name. Global flags come before the command; before runs with them (it
// may, for example, change directory) and a non-zero result stops there.
// -h/-help/--help anywhere and "help [COMMAND...]" print help to stdout
// and exit 0.
func (a *App) Run(args []string, stdin io.Reader, stdout, stderr io.Writer, before func(*Values) int) int {
	gfs, gv, err := newFlagSet(a.Name, a.Global)
	if err != nil {
		panic(err)
	}
	// Global flags: up to the first word that is not a flag.
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.WriteUsage(stdout)
			return ExitOK
		}
		fmt.Fprintf(stderr, "Error: %v\n\n", err)
		a.WriteUsage(stderr)
		return ExitUsage
	}
	gfs.Visit(func(f *flag.Flag) { gv.set[f.Name] = true })
	args = gfs.Args()
	if len(args) == 0 {
		a.WriteUsage(stdout)
		return ExitUsage
	}
	if args[0] == "help" {
		return a.help(args[1:], stdout, stderr)
	}
	raw := args
	cmds, path := a.Commands, ""
	for {
		name := args[0]
		i := slices.IndexFunc(cmds, func(c *Command) bool { return c.Name == name })
		if i < 0 {
			a.unknown(strings.TrimSpace(path+" "+name), cmds, stderr)
			return ExitUsage
		}
		c := cmds[i]
		path = strings.TrimSpace(path + " " + name)
		args = args[1:]
		if len(c.Sub) == 0 {
			return a.run(c, path, raw, args, gv, stdin, stdout, stderr, before)
		}
		if len(args) == 0 {
			fmt.Fprintf(stderr, "Error: %s %s needs a subcommand.\n\n", a.Name, path)
			a.WriteHelp(stderr, path, c)
			return ExitUsage
		}
		if isHelp(args[0]) {
			a.WriteHelp(stdout, path, c)
			return ExitOK
		}
		cmds = c.Sub
	}
}

func (a *App) run(c *Command, path string, raw, args []string, gv *Values, stdin io.Reader, stdout, stderr io.Writer, before func(*Values) int) int {
	fs, v, err := newFlagSet(path, c.Flags)
	if err != nil {
		panic(err)
	}
	call := &Call{App: a, Cmd: c, Path: path, Raw: raw, Stdin: stdin, Stdout: stdout, Stderr: stderr, Global: gv, Values: v}
	pos, err := parse(fs, v, args)
	if errors.Is(err, flag.ErrHelp) {
		a.WriteHelp(stdout, path, c)
		return ExitOK
	}
	if err != nil {
		msg := err.Error()
		if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
			msg = fmt.Sprintf("%s %s has no option -%s", a.Name, path, name)
			if s := suggest.Closest(name, flagNames(c.Flags)); s != "" {
				msg += fmt.Sprintf(" (did you mean -%s?)", s)
			}
		}
		return call.Usagef("%s", msg)
	}
	// -h after "--" is an argument; before it, flag already caught it.
	min, max := argCount(c.Args)
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		return call.Usagef("%s %s takes %s, got %d", a.Name, path, describeCount(c.Args, min, max), len(pos))
	}
	call.Args = pos
	if before != nil {
		if code := before(gv); code != 0 {
			return code
		}
	}
	return c.Run(call)
}

func flagNames(fl []Flag) []string {
	out := make([]string, len(fl))
	for i, f := range fl {
		out[i] = f.Name
	}
	return out
}

func argCount(args []Arg) (min, max int) {
	for _, a := range args {
		if !a.Optional {
			min++
		}
		if a.Repeat {
			return min, -1
		}
		max++
	}
	return min, max
}

func describeCount(args []Arg, min, max int) string {
	names := make([]string, len(args))
	for i, a := range args {
		names[i] = a.Name
	}
	what := strings.Join(names, " ")
	switch {
	case max == 0:
		return "no arguments"
	case min == max && min == 1:
		return "one argument (" + what + ")"
	case min == max:
		return fmt.Sprintf("%d arguments (%s)", min, what)
	case max < 0:
		return fmt.Sprintf("at least %d argument(s) (%s)", min, what)
	default:
		return fmt.Sprintf("%d to %d arguments (%s)", min, max, what)
	}
}

func (a *App) help(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		a.WriteUsage(stdout)
		return ExitOK
	}
	path := strings.Join(args, " ")
	c := a.Find(path)
	if c == nil {
		a.unknown(path, a.Commands, stderr)
		return ExitUsage
	}
	a.WriteHelp(stdout, path, c)
	return ExitOK
}

func (a *App) unknown(path string, among []*Command, stderr io.Writer) {
	fmt.Fprintf(stderr, "%s: unknown command %q\n", a.Name, path)
	names := make([]string, len(among))
	for i, c := range among {
		names[i] = c.Name
	}
	last := path[strings.LastIndex(path, " ")+1:]
	if s := suggest.Closest(last, names); s != "" {
		fmt.Fprintf(stderr, "Did you mean %q?\n", s)
	}
	fmt.Fprintf(stderr, "Run '%s help' for the list of commands.\n", a.Name)
}
