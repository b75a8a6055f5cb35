package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fapiaohub/invoicer/cmd/internal/intflag"
)

// envFlag is the flag.Value of a number, duration or boolean flag that has
// an environment variable: parseFlags reads the variable with the same Set
// as the command line's value, so that the two read alike by construction
// (spaces around the value ignored, numbers in base 10, the same words
// refused), and a value Set refuses is named with the variable as well as
// the flag, which the flag package names, wherever it was given.
//
// The standard flag package's own duration and boolean values refuse a
// value with a space around it, where the variables, which come from
// ConfigMaps and environment files ("30s " after a YAML quote, a block's
// trailing newline), were trimmed: the same value was taken from one
// place and refused from the other.
type envFlag[T any] struct {
	p      *T
	parse  func(string) (T, error)
	env    string // the flag's variable, for the errors
	isBool bool
}

// String returns the value as the flag package shows defaults. A zero
// envFlag, which the flag package makes to tell a default worth showing,
// shows T's zero value.
func (f *envFlag[T]) String() string {
	if f == nil || f.p == nil {
		var zero T
		return fmt.Sprint(zero)
	}
	return fmt.Sprint(*f.p)
}

// Set reads s, the command line's value, leaving the value unchanged when
// it is refused; the error names the variable, and the flag package adds
// the flag.
func (f *envFlag[T]) Set(s string) error {
	if err := f.setEnv(s); err != nil {
		return fmt.Errorf("%w (its variable: %s)", err, f.env)
	}
	return nil
}

// setEnv reads s, the variable's value, as Set reads the command line's,
// leaving the value unchanged when it is refused.
func (f *envFlag[T]) setEnv(s string) error {
	x, err := f.parse(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	*f.p = x
	return nil
}

// variable returns the name of the flag's environment variable.
func (f *envFlag[T]) variable() string { return f.env }

// envValue is an envFlag of any type, for parseFlags to read its variable.
type envValue interface {
	flag.Value
	variable() string
	setEnv(string) error
}

// Get returns the value (flag.Getter).
func (f *envFlag[T]) Get() any { return *f.p }

// IsBoolFlag says whether the flag is a switch, given without a value
// (--strict-tax-numbers) as the flag package's booleans are.
func (f *envFlag[T]) IsBoolFlag() bool { return f != nil && f.isBool }

// intValue is the value of an integer flag with the variable env, read in
// base 10 as intflag reads it.
func intValue(p *int, def int, env string) *envFlag[int] {
	*p = def
	return &envFlag[int]{p: p, env: env, parse: func(s string) (int, error) {
		var n int
		err := intflag.NewInt(&n, 0).Set(s)
		return n, err
	}}
}

// durationValue is the value of a duration flag with the variable env.
func durationValue(p *time.Duration, def time.Duration, env string) *envFlag[time.Duration] {
	*p = def
	return &envFlag[time.Duration]{p: p, env: env, parse: func(s string) (time.Duration, error) {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, errors.New("not a duration with its unit, such as 30s or 2m")
		}
		return d, nil
	}}
}

// boolValue is the value of a switch with the variable env, read as
// strconv.ParseBool reads it (true, false, 1, 0, t, f).
func boolValue(p *bool, env string) *envFlag[bool] {
	*p = false
	return &envFlag[bool]{p: p, env: env, isBool: true, parse: func(s string) (bool, error) {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return false, errors.New("use true or false")
		}
		return b, nil
	}}
}

var (
	_ flag.Getter = (*envFlag[int])(nil)
	_ envValue    = (*envFlag[int])(nil)
)
