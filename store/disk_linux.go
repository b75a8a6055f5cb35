//go:build linux

package store

import (
	"fmt"
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

// roomWithoutScratch is the probe's headroom check in a data directory
// that refused its scratch file (denied): the disk must have n bytes free,
// and the process's limit on one file's size (RLIMIT_FSIZE) must let the
// store file grow from size by n. It cannot find a quota or the file
// system's largest file, which the scratch file would have.
func (db *DB) roomWithoutScratch(size, n int64, denied error) error {
	why := fmt.Sprintf("the data directory does not let the probe create its scratch file (%v), so the room was looked up", denied)
	free, _, err := db.DiskSpace()
	if err != nil {
		return fmt.Errorf("room for the store to grow: %s: %w", why, err)
	}
	if free < uint64(n) {
		return fmt.Errorf("room for the store to grow: %d bytes free on its disk, %d needed (%s)", free, n, why)
	}
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		return fmt.Errorf("room for the store file to grow: %s: %w", why, err)
	}
	if limit.Cur < uint64(size+n) {
		return fmt.Errorf("room for the store file to grow to %d bytes: the file size limit (RLIMIT_FSIZE) is %d bytes (%s)", size+n, limit.Cur, why)
	}
	return nil
}
