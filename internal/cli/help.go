package cli

import (
	"fmt"
	"io"
	"strings"
)

const helpWidth = 80

// usageLine is "jitsi-agent [global options] apply [options] SPEC".
func (a *App) usageLine(path string, c *Command) string {
	var b strings.Builder
	b.WriteString(a.Name)
	if len(a.Global) > 0 {
		b.WriteString(" [global options]")
	}
	b.WriteString(" " + path)
	if len(c.Sub) > 0 {
		b.WriteString(" <subcommand> [options] [args]")
		return b.String()
	}
	if len(c.Flags) > 0 {
		b.WriteString(" [options]")
	}
	for _, arg := range c.Args {
		s := arg.Name
		if arg.Repeat {
			s += "..."
		}
		if arg.Optional {
			s = "[" + s + "]"
		}
		b.WriteString(" " + s)
	}
	return b.String()
}

// WriteUsage prints the program's usage: the command list and the global
// options.
func (a *App) WriteUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s [global options] <command> [options] [args]\n\n", a.Name)
	writeParagraphs(w, a.Synopsis, "  ")
	fmt.Fprintln(w, "\nCommands:")
	width := 0
	for _, c := range a.Commands {
		width = max(width, len(c.Name))
	}
	for _, c := range a.Commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.Name, c.Synopsis)
	}
	if len(a.Global) > 0 {
		fmt.Fprintln(w, "\nGlobal options (before the command):")
		writeFlags(w, a.Global)
	}
	fmt.Fprintf(w, "\nRun '%s help <command>' or '%s <command> -h' for a command's options.\n", a.Name, a.Name)
}

// WriteHelp prints one command's help: usage line, description, options
// (or subcommands) and exit status.
func (a *App) WriteHelp(w io.Writer, path string, c *Command) {
	fmt.Fprintf(w, "Usage: %s\n\n", a.usageLine(path, c))
	writeParagraphs(w, c.Synopsis, "  ")
	if c.Help != "" {
		fmt.Fprintln(w)
		writeParagraphs(w, c.Help, "  ")
	}
	if len(c.Sub) > 0 {
		fmt.Fprintln(w, "\nSubcommands:")
		width := 0
		for _, s := range c.Sub {
			width = max(width, len(s.Name))
		}
		for _, s := range c.Sub {
			fmt.Fprintf(w, "  %-*s  %s\n", width, s.Name, s.Synopsis)
		}
		fmt.Fprintf(w, "\nRun '%s help %s <subcommand>' for a subcommand's options.\n", a.Name, path)
	}
	if len(c.Flags) > 0 {
		fmt.Fprintln(w, "\nOptions (-name and --name are the same):")
		writeFlags(w, c.Flags)
	}
	if c.Exit != "" {
		fmt.Fprintln(w, "\nExit status:")
		writeParagraphs(w, c.Exit, "  ")
	}
}

// FlagTerm is how a flag is shown: "-root DIR", "-json".
func FlagTerm(f Flag) string {
	s := "-" + f.Name
	if f.Kind != Bool {
		arg := f.Arg
		if arg == "" {
			arg = map[Kind]string{String: "VALUE", Int: "N", Duration: "DURATION", Strings: "VALUE"}[f.Kind]
		}
		s += " " + arg
	}
	return s
}

// FlagText is the flag's description with its default and repeatability.
func FlagText(f Flag) string {
	s := strings.TrimSuffix(f.Usage, ".")
	if f.Kind == Strings {
		s += " (repeatable)"
	}
	if f.Default != "" && f.Kind != Bool {
		s += fmt.Sprintf(" (default %s)", f.Default)
	}
	return s
}

func writeFlags(w io.Writer, flags []Flag) {
	for _, f := range flags {
		term := FlagTerm(f)
		text := FlagText(f)
		const col = 24
		if len(term) <= col-4 {
			lines := wrap(text, helpWidth-col-2)
			fmt.Fprintf(w, "  %-*s%s\n", col-2, term, lines[0])
			for _, l := range lines[1:] {
				fmt.Fprintf(w, "%s%s\n", strings.Repeat(" ", col), l)
			}
			continue
		}
		fmt.Fprintf(w, "  %s\n", term)
		for _, l := range wrap(text, helpWidth-col-2) {
			fmt.Fprintf(w, "%s%s\n", strings.Repeat(" ", col), l)
		}
	}
}

// paragraphs splits help text into paragraphs; a paragraph whose lines
// start with a space is preformatted (examples) and kept as is.
func paragraphs(text string) [][]string {
	var out [][]string
	var cur []string
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if strings.TrimSpace(line) == "" {
			if cur != nil {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, line)
	}
	if cur != nil {
		out = append(out, cur)
	}
	return out
}

func preformatted(p []string) bool { return strings.HasPrefix(p[0], " ") }

func writeParagraphs(w io.Writer, text, indent string) {
	for i, p := range paragraphs(text) {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if preformatted(p) {
			for _, l := range p {
				fmt.Fprintf(w, "%s%s\n", indent, l)
			}
			continue
		}
		for _, l := range wrap(strings.Join(p, " "), helpWidth-len(indent)) {
			fmt.Fprintf(w, "%s%s\n", indent, l)
		}
	}
}

func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = word
			continue
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return append(lines, line)
}
