// Package intflag reads the commands' integer flags in base 10 only.
//
// The standard flag package and spf13/pflag (cobra's flags) read an integer
// flag in base 0, as Go source: --workers 010 is octal 8 and --workers 0x10
// is 16, where the INVOICE_* variables, read with strconv.Atoi, take 010
// for 10. A systemd instance @010 passing --partition %i would consume
// partition 8. The values here read a leading zero as decimal and refuse a
// hex, octal (0o) or binary (0b) prefix; the flag package's error then
// names the flag. They serve both packages: pass them to FlagSet.Var.
//
//	fs.Var(intflag.NewInt(&o.workers, 128), "workers", "the `number` of requests processed at once")
//
// The standard flag package shows a value of its own type as "value" in
// -h unless the usage names it between back quotes (a `number`); pflag
// shows Type, which is that of its own flags ("int", "uint64").
package intflag
