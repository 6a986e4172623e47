//go:build linux

package rotate

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/internal/asnobody"
	"github.com/plana-cli/plana/rotate/internal/rotatetest"
	"github.com/plana-cli/plana/rotate/target"
)

// nobody and nogroup, as the tests run them.
const nobody = 65534

func ownerMode(t *testing.T, p string) (uid, gid uint32, perm os.FileMode) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid, fi.Mode().Perm()
}

// A service reading its env file through its group must still read it
// after plana, run as root (sudo, a root cron), rewrote it at steps 2 and 4.
func TestRotationKeepsEnvFileOwnerGroupAndMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving the env file to nobody:nogroup needs root")
	}
	w := newWorld(t)
	if err := os.Chown(w.EnvPath, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(w.EnvPath, 0o640); err != nil {
		t.Fatal(err)
	}
	check := func(step string) {
		t.Helper()
		if uid, gid, perm := ownerMode(t, w.EnvPath); uid != nobody || gid != nobody || perm != 0o640 {
			t.Errorf("after %s the env file is %d:%d at %04o, want nobody:nogroup at 0640", step, uid, gid, perm)
		}
	}
	stop := w.automation(t)
	rotatetest.Eventually(t, "the automation to use the old key", func() bool { return w.Key(w.Old.ID).LastUsedAt != nil })
	opts := fastOpts(w)
	opts.NoWait = true
	res, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if !errors.Is(err, ErrPending) {
		t.Fatalf("first run: want the gate pending, got %v", err)
	}
	check("step 2")
	rotatetest.Eventually(t, "the automation to move to the new key", func() bool { return w.Key(res.New.ID).LastUsedAt != nil })
	w.pushClock()
	opts.NoWait, opts.Yes = false, true
	if _, err := w.rotator().Rotate(context.Background(), w.Old, opts); err != nil {
		t.Fatal(err)
	}
	stop()
	check("step 4")
	data, _ := os.ReadFile(w.EnvPath)
	if _, ok := target.LookupEnv(data, target.NewKeySlot); ok {
		t.Error("step 4 did not run")
	}
}

// ownedEnvVar passes the env file root prepared to the rerun as nobody.
const ownedEnvVar = "PLANA_TEST_ROOT_OWNED_ENV"

// Where the owner cannot be kept, the rotation stops before step 1: no key
// is created that the automation could never receive.
func TestRotationRefusesEnvFileOwnerItCannotKeep(t *testing.T) {
	p := os.Getenv(ownedEnvVar)
	if p == "" {
		if os.Geteuid() != 0 {
			t.Skip("making an env file someone else owns needs root")
		}
		p = asnobody.GroupFile(t, "automation.env", nil)
		t.Setenv(ownedEnvVar, p)
		if !asnobody.Rerun(t) {
			t.Fatal("the rerun as nobody did not happen")
		}
		if uid, gid, perm := ownerMode(t, p); uid != 0 || gid != nobody || perm != 0o660 {
			t.Errorf("the refused env file is now %d:%d at %04o", uid, gid, perm)
		}
		return
	}
	// As nobody, who may write the file through its group.
	w := newWorld(t)
	if err := os.WriteFile(p, []byte("PLANA_KEY="+w.OldPlain+"\n"), 0o660); err != nil {
		t.Fatal(err)
	}
	before := len(w.Keys(client.StatusAll))
	opts := fastOpts(w)
	opts.Targets = []string{"env-file:" + p}
	_, err := w.rotator().Rotate(context.Background(), w.Old, opts)
	if err == nil || !strings.Contains(err.Error(), "belongs to root:nogroup") || !strings.Contains(err.Error(), "run plana as root") {
		t.Fatalf("want a refusal naming the owner and what to do, got %v", err)
	}
	if after := len(w.Keys(client.StatusAll)); after != before {
		t.Errorf("%d keys created before the refusal", after-before)
	}
	if data, _ := os.ReadFile(p); strings.Contains(string(data), target.NewKeySlot) {
		t.Error("the env file was written")
	}
}
