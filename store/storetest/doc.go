// Package storetest opens order stores for tests in other packages: a new
// file in the test's temporary directory, without fsync (the tests that
// measure durability open their own), closed when the test ends.
package storetest
