//go:build !linux

package store

import (
	"errors"
	"fmt"
)

// DiskSpace returns the space left to an unprivileged writer (free) and
// the size of the file system that holds the store's file, in bytes. Only
// Linux is supported; elsewhere it returns errors.ErrUnsupported.
func (db *DB) DiskSpace() (free, size uint64, err error) {
	return 0, 0, errors.ErrUnsupported
}

// roomWithoutScratch is the probe's headroom check in a data directory
// that refused its scratch file (denied). Only Linux looks the room up;
// elsewhere the probe fails, saying why.
func (db *DB) roomWithoutScratch(size, n int64, denied error) error {
	return fmt.Errorf("room for the store to grow: the data directory does not let the probe create its scratch file, and the room cannot be looked up on this system: make the directory writable: %w", denied)
}
