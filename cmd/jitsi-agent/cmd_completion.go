package main

import (
	"github.com/jitsi-agent/jitsi-agent/internal/cli"
)

func runCompletion(c *cli.Call) int {
	switch c.Args[0] {
	case "bash":
		c.App.WriteBash(c.Stdout)
	case "zsh":
		c.App.WriteZsh(c.Stdout)
	case "fish":
		c.App.WriteFish(c.Stdout)
	default:
		return c.Usagef("unknown shell %q; completion supports bash, zsh and fish", c.Args[0])
	}
	return exitOK
}

func runMan(c *cli.Call) int {
	c.App.WriteMan(c.Stdout)
	return exitOK
}
