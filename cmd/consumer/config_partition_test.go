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

// An explicit partition (--partition or INVOICE_PARTITION, 0 included)
// beside --partition-from-hostname (or INVOICE_PARTITION_FROM_HOSTNAME) is
// a mistake the start refuses, naming both flags and both variables,
// rather than let one of the two numbers win without a word: README
// documents no precedence between them.
func TestPartitionAndPartitionFromHostnameAreRefusedTogether(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"both flags", []string{"--partitions", "3", "--partition", "1", "--partition-from-hostname"}, nil},
		{"both flags, the hostname's first", []string{"--partitions", "3", "--partition-from-hostname", "--partition", "1"}, nil},
		{"both variables", nil, map[string]string{"INVOICE_PARTITIONS": "3", "INVOICE_PARTITION": "1", "INVOICE_PARTITION_FROM_HOSTNAME": "true"}},
		{"the flag and the hostname's variable", []string{"--partitions", "3", "--partition", "1"}, map[string]string{"INVOICE_PARTITION_FROM_HOSTNAME": "true"}},
		{"the variable and the hostname's flag", []string{"--partitions", "3", "--partition-from-hostname"}, map[string]string{"INVOICE_PARTITION": "1"}},
		{"an explicit 0", []string{"--partitions", "3", "--partition", "0", "--partition-from-hostname"}, nil},
		{"the hostname's own number", []string{"--partitions", "3", "--partition", "2", "--partition-from-hostname"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"HOSTNAME": "invoicer-2"}
			for k, v := range tc.env {
				env[k] = v
			}
			o, err := parseFlags(tc.args, envOf(env))
			if err == nil {
				t.Fatalf("accepted, partition %d", o.partition)
			}
			words := map[string]bool{}
			for _, w := range strings.FieldsFunc(err.Error(), func(r rune) bool {
				return !(r == '-' || r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
			}) {
				words[w] = true
			}
			for _, name := range []string{"--partition", "--partition-from-hostname", "INVOICE_PARTITION", "INVOICE_PARTITION_FROM_HOSTNAME"} {
				if !words[name] {
					t.Errorf("error %q does not name %s", err, name)
				}
			}
		})
	}
	// Either one alone is taken, and the other's switch set to off or a
	// variable set to "" is not a partition given.
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want int
	}{
		{"the hostname", []string{"--partitions", "3", "--partition-from-hostname"}, nil, 2},
		{"the flag", []string{"--partitions", "3", "--partition", "1"}, nil, 1},
		{"the flag, the hostname's switched off", []string{"--partitions", "3", "--partition", "1", "--partition-from-hostname=false"}, map[string]string{"INVOICE_PARTITION_FROM_HOSTNAME": "true"}, 1},
		{"the hostname, an empty INVOICE_PARTITION", []string{"--partitions", "3", "--partition-from-hostname"}, map[string]string{"INVOICE_PARTITION": ""}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"HOSTNAME": "invoicer-2"}
			for k, v := range tc.env {
				env[k] = v
			}
			o, err := parseFlags(tc.args, envOf(env))
			if err != nil {
				t.Fatal(err)
			}
			if o.partition != tc.want {
				t.Fatalf("partition %d, want %d", o.partition, tc.want)
			}
		})
	}
}

// --partition-from-hostname refuses a host name that is not a StatefulSet
// pod's <name>-<ordinal> (a Deployment's pod, a machine's own name, a fully
// qualified name), naming the flag, the host name, the form it expects and
// the way out, --partition; a number beyond --partitions names the host
// name it came from (more pods than partitions, or a name whose last part
// only happens to be digits, as a Deployment pod's may be), and --partition
// too: the operator gave no --partition.
func TestPartitionFromHostnameRefusesOtherHostNames(t *testing.T) {
	way := []string{"--partition-from-hostname", "<name>-<ordinal>", "--partition (INVOICE_PARTITION)"}
	for _, tc := range []struct {
		host string
		want []string
	}{
		{"invoicer", append([]string{`"invoicer"`}, way...)},
		{"invoicer-", append([]string{`"invoicer-"`}, way...)},
		{"invoicer-7d9f8c6b5-x2k4q", append([]string{`"invoicer-7d9f8c6b5-x2k4q"`}, way...)},
		{"invoicer-2.example.com", append([]string{`"invoicer-2.example.com"`}, way...)},
		{"invoicer-3", []string{"--partition 3", `"invoicer-3"`, "0 to 2", "--partition (INVOICE_PARTITION)"}},
		{"invoicer-7d9f8c6b5-24567", []string{"--partition 24567", `"invoicer-7d9f8c6b5-24567"`, "0 to 2", "--partition (INVOICE_PARTITION)"}},
	} {
		t.Run(tc.host, func(t *testing.T) {
			o, err := parseFlags([]string{"--partitions", "3", "--partition-from-hostname"}, envOf(map[string]string{"HOSTNAME": tc.host}))
			if err == nil {
				t.Fatalf("accepted, partition %d", o.partition)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %s", err, w)
				}
			}
		})
	}
}
