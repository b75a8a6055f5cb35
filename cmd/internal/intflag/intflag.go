package intflag

import (
	"errors"
	"strconv"
	"strings"
)

// Int is an int flag read in base 10.
type Int int

// NewInt sets *p to def and returns p as a flag value that reads into it.
func NewInt(p *int, def int) *Int {
	*p = def
	return (*Int)(p)
}

// String returns the number in base 10.
func (v *Int) String() string { return strconv.Itoa(int(*v)) }

// Set reads s in base 10: a leading zero or a sign is allowed, as
// strconv.Atoi allows them, and surrounding spaces are ignored.
func (v *Int) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return parseError(err, "not a whole number in base 10")
	}
	*v = Int(n)
	return nil
}

// Get returns the number as an int (flag.Getter).
func (v *Int) Get() any { return int(*v) }

// Type is the name pflag shows for the value: "int", as for its own.
func (v *Int) Type() string { return "int" }

// Uint64 is a uint64 flag read in base 10.
type Uint64 uint64

// NewUint64 sets *p to def and returns p as a flag value that reads into
// it.
func NewUint64(p *uint64, def uint64) *Uint64 {
	*p = def
	return (*Uint64)(p)
}

// String returns the number in base 10.
func (v *Uint64) String() string { return strconv.FormatUint(uint64(*v), 10) }

// Set reads s in base 10: a leading zero is allowed, a sign is not, and
// surrounding spaces are ignored.
func (v *Uint64) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return parseError(err, "not a whole number of 0 or more in base 10")
	}
	*v = Uint64(n)
	return nil
}

// Get returns the number as a uint64 (flag.Getter).
func (v *Uint64) Get() any { return uint64(*v) }

// Type is the name pflag shows for the value: "uint64", as for its own.
func (v *Uint64) Type() string { return "uint64" }

// parseError says why strconv refused a number: out of range, or not one
// (want).
func parseError(err error, want string) error {
	if errors.Is(err, strconv.ErrRange) {
		return errors.New("out of range")
	}
	return errors.New(want)
}
