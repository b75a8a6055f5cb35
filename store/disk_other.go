//go:build !linux

package store

import "errors"

// DiskSpace returns the space left to an unprivileged writer (free) and
// the size of the file system that holds the store's file, in bytes. Only
// Linux is supported; elsewhere it returns errors.ErrUnsupported.
func (db *DB) DiskSpace() (free, size uint64, err error) {
	return 0, 0, errors.ErrUnsupported
}
