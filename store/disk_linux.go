//go:build linux

package store

import (
	"path/filepath"
	"syscall"
)

// DiskSpace returns the space left to an unprivileged writer (free) and
// the size of the file system that holds the store's file, in bytes.
func (db *DB) DiskSpace() (free, size uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(db.cfg.Path), &st); err != nil {
		return 0, 0, err
	}
	bs := uint64(st.Bsize)
	return st.Bavail * bs, st.Blocks * bs, nil
}
