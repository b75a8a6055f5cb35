package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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

// TestMaxBytesMustBePositive: validate's and publish's --max-bytes, like
// the consumer's --max-request-bytes, is refused at 0 or less with a usage
// error naming the flag, not taken for the default (0) or refused in the
// validator's words, which name no flag (less). publish refuses it before
// it connects: the server given here is unreachable, which would be exit 3.
func TestMaxBytesMustBePositive(t *testing.T) {
	good := filepath.Join("..", "..", "schemas", "testdata", "requests", "issue-discount.json")
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{{"validate"}, {"publish", "--dry-run"}, {"--server", "nats://127.0.0.1:1", "publish"}} {
		for _, n := range []string{"0", "-1", "00"} {
			args := append(append(append([]string(nil), cmd...), "--max-bytes", n), good)
			t.Run(strings.Join(args[:len(args)-1], " "), func(t *testing.T) {
				out, errOut, code := runCLI(t, "", args...)
				if code != exitUsage || !strings.Contains(errOut, "--max-bytes") {
					t.Errorf("exit %d, want %d with an error naming --max-bytes\nstdout: %s\nstderr: %s", code, exitUsage, out, errOut)
				}
			})
		}
		// A positive limit is still taken, and holds: the request is
		// larger than half its file.
		if cmd[0] == "--server" {
			continue // would connect
		}
		limit := len(data) / 2
		args := append(append(append([]string(nil), cmd...), "--max-bytes", strconv.Itoa(limit)), good)
		out, errOut, code := runCLI(t, "", args...)
		if code != exitFailed || !strings.Contains(out, fmt.Sprintf("the limit is %d", limit)) {
			t.Errorf("%s: exit %d, want %d reporting the limit\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, exitFailed, out, errOut)
		}
	}
}
