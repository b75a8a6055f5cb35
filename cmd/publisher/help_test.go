package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func TestHelp(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.Name() == "help" || c.Name() == "completion" {
			return
		}
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(newRootCommand(), nil)
	want := []string{"validate", "publish", "demo", "tail", "status", "dlq", "dlq list", "dlq show", "dlq replay"}
	for _, w := range want {
		found := false
		for _, p := range paths {
			found = found || strings.Join(p, " ") == w
		}
		if !found {
			t.Errorf("no subcommand %q", w)
		}
	}
	for _, path := range paths {
		name := strings.Join(append([]string{"publisher"}, path...), " ")
		t.Run(name, func(t *testing.T) {
			out, errOut, code := runCLI(t, "", append(append([]string(nil), path...), "--help")...)
			if code != exitOK {
				t.Fatalf("exit %d\n%s", code, errOut)
			}
			if !strings.Contains(out, "Usage:") || !strings.Contains(out, "Examples:") {
				t.Errorf("help without usage or examples:\n%s", out)
			}
			// Every flag of the command, its own and the global ones, is named.
			cmd, _, err := newRootCommand().Find(path)
			if err != nil {
				t.Fatal(err)
			}
			check := func(f *pflag.Flag) {
				if !strings.Contains(out, "--"+f.Name) {
					t.Errorf("help does not name --%s:\n%s", f.Name, out)
				}
			}
			cmd.LocalFlags().VisitAll(check)
			cmd.InheritedFlags().VisitAll(check)
		})
	}
	// A subcommand that does not exist, and dlq alone, are usage errors.
	for _, args := range [][]string{{"frobnicate"}, {"dlq"}, {"publish"}, {"tail", "extra"}} {
		if _, _, code := runCLI(t, "", args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
