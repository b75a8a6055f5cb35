package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Every integer flag of every subcommand is read in base 10, as the
// consumer's are: pflag's IntVar would read --window 010 as octal 8 and
// 0x10 as 16. A hex number is refused, naming the flag, with the usage
// exit code.
func TestIntegerFlagsAreDecimal(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			walk(sub, append(append([]string(nil), path...), sub.Name()))
		}
	}
	walk(newRootCommand(), nil)
	seen := 0
	for _, path := range paths {
		cmd, _, err := newRootCommand().Find(path)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			switch f.Value.Type() {
			case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
			default:
				return
			}
			seen++
			name := strings.Join(append(append([]string(nil), path...), "--"+f.Name), " ")
			t.Run(name, func(t *testing.T) {
				c, _, _ := newRootCommand().Find(path)
				if err := c.ParseFlags([]string{"--" + f.Name, "010"}); err != nil {
					t.Fatal(err)
				}
				if got := c.Flags().Lookup(f.Name).Value.String(); got != "10" {
					t.Errorf("%s 010 = %s, want 10", name, got)
				}
				c, _, _ = newRootCommand().Find(path)
				err := c.ParseFlags([]string{"--" + f.Name, "0x10"})
				if err == nil || !strings.Contains(err.Error(), "--"+f.Name) {
					t.Errorf("%s 0x10: error %v, want one naming the flag", name, err)
				}
			})
		})
	}
	if seen < 10 {
		t.Errorf("%d integer flags, want the 10 of bench, demo, publish, tail and validate at least", seen)
	}
	if _, errOut, code := runCLI(t, "{}\n", "validate", "--max-bytes", "0x10", "-"); code != exitUsage || !strings.Contains(errOut, "--max-bytes") {
		t.Errorf("validate --max-bytes 0x10: exit %d, %q; want %d naming the flag", code, errOut, exitUsage)
	}
}
