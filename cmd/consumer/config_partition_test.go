package main

import (
	"strings"
	"testing"
)

// --partition and --partitions are read in base 10, as their environment
// variables are: a leading zero (the systemd unit's --partition %i for an
// instance invoicer-consumer@010) is decimal, not octal, and a hex or
// otherwise unreadable number is refused naming the flag, never taken for
// another partition.
func TestPartitionFlagsAreDecimal(t *testing.T) {
	for _, tc := range []struct {
		name             string
		args             []string
		env              map[string]string
		partitions, part int
	}{
		{"leading zero", []string{"--partitions", "12", "--partition", "010"}, nil, 12, 10},
		{"leading zero with an 8", []string{"--partitions", "12", "--partition", "08"}, nil, 12, 8},
		{"leading zero in the count", []string{"--partitions", "012", "--partition", "11"}, nil, 12, 11},
		{"a plus sign", []string{"--partitions", "+3", "--partition", "+2"}, nil, 3, 2},
		{"the same as the variables", nil, map[string]string{"INVOICE_PARTITIONS": "012", "INVOICE_PARTITION": "010"}, 12, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if o.partitions != tc.partitions || o.partition != tc.part {
				t.Fatalf("--partitions %d --partition %d, want %d and %d", o.partitions, o.partition, tc.partitions, tc.part)
			}
		})
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"hex partition", []string{"--partitions", "20", "--partition", "0x10"}, "-partition"},
		{"hex count", []string{"--partitions", "0x10", "--partition", "1"}, "-partitions"},
		{"a negative partition", []string{"--partitions", "3", "--partition", "-1"}, "--partition -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, noEnv)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}
