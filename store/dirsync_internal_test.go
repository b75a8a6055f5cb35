package store

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
)

// TestOpenSyncsTheDirectoryOfANewFile: bbolt fsyncs the file's contents,
// never the directory entry that names a new file, and a crash could then
// take the file with every write acknowledged in it. Open fsyncs the data
// directory when it creates the file (not when it opens an existing one, nor
// with NoSync), and fails when it cannot.
func TestOpenSyncsTheDirectoryOfANewFile(t *testing.T) {
	var synced []string
	fail := false
	saved := syncDir
	t.Cleanup(func() { syncDir = saved })
	syncDir = func(dir string) error {
		synced = append(synced, dir)
		if fail {
			return errors.New("an fsync failure")
		}
		return saved(dir)
	}

	dir := t.TempDir()
	cfg := Config{Path: filepath.Join(dir, "orders.db")}
	db, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(synced, []string{dir}) {
		t.Fatalf("directories synced creating the file: %q, want %q", synced, dir)
	}
	db, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if len(synced) != 1 {
		t.Fatalf("directories synced reopening the file: %q, want none more", synced[1:])
	}
	noSync, err := Open(Config{Path: filepath.Join(t.TempDir(), "orders.db"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = noSync.Close()
	if len(synced) != 1 {
		t.Fatalf("directories synced with NoSync: %q, want none more", synced[1:])
	}

	fail = true
	if db, err := Open(Config{Path: filepath.Join(t.TempDir(), "orders.db")}); err == nil {
		_ = db.Close()
		t.Fatal("Open succeeded though the new file's directory entry could not be made durable")
	}
}
