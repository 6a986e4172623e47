// Package emutest serves a real bos-emulator to a test: its SQLite file in
// the test's directory, on loopback, closed when the test ends.
package emutest

import (
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/plana-cli/plana/emulator"
)

// Start serves a new emulator made from cfg, with a database of its own and
// bcrypt at cost 4 (hashing is not what tests measure) unless cfg sets
// them, and returns it with its URL.
func Start(t testing.TB, cfg emulator.Config) (*emulator.Server, string) {
	t.Helper()
	if cfg.DBPath == "" {
		cfg.DBPath = filepath.Join(t.TempDir(), "bos.db")
	}
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = 4
	}
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(func() {
		srv.Close()
		if err := emu.Close(); err != nil {
			t.Error(err)
		}
	})
	return emu, srv.URL
}
