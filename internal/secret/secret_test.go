package secret

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zalando/go-keyring"
)

// mockBus gives the mocked Secret Service the session bus address plana
// asks for before any keyring call; the mock never dials it.
func mockBus(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
}

func TestKeyringMock(t *testing.T) {
	mockBus(t)
	keyring.MockInit()
	s := NewKeyring(time.Second)

	if _, err := s.Get("token:default"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing entry: err = %v, want ErrNotFound", err)
	}
	if err := s.Set("token:default", "v1"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get("token:default"); err != nil || got != "v1" {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if err := s.Delete("token:default"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("token:default"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete: err = %v, want ErrNotFound", err)
	}
	if err := s.Set("big", strings.Repeat("x", MaxValueLen+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized Set: err = %v, want ErrTooLarge", err)
	}
	if err := Probe(s); err != nil {
		t.Fatalf("Probe on a working keyring: %v", err)
	}
}

func TestKeyringBackendFailureIsUnavailable(t *testing.T) {
	mockBus(t)
	keyring.MockInitWithError(errors.New("The name org.freedesktop.secrets was not provided by any .service files"))
	s := NewKeyring(time.Second)
	err := s.Set("token:default", "v")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "PLANA_TOKEN") {
		t.Errorf("error does not say what to do: %v", err)
	}
	if err := Probe(s); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Probe: err = %v, want ErrUnavailable", err)
	}
}

func TestTimeoutOnHangingBackend(t *testing.T) {
	m := NewMemory()
	m.Hang = make(chan struct{})
	t.Cleanup(func() { close(m.Hang) })
	s := WithTimeout(m, 50*time.Millisecond)
	start := time.Now()
	_, err := s.Get("token:default")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("a hung keyring held the caller for %s", el)
	}
	if err := Probe(s); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Probe on a hung keyring: err = %v, want ErrUnavailable", err)
	}
}

func TestMemoryFaults(t *testing.T) {
	m := NewMemory()
	if err := Probe(m); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if len(m.Names()) != 0 {
		t.Errorf("Probe left entries behind: %v", m.Names())
	}
	m.SetErr = ErrUnavailable
	if err := Probe(m); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Probe with failing Set: err = %v", err)
	}
}

func TestNames(t *testing.T) {
	if TokenName("staging") == KeyName("staging") {
		t.Error("token and key entry names collide")
	}
}

// The real keyring runs in a child process: zalando/go-keyring's MockInit
// replaces the backend for the rest of the process, with no way back.
const childEnv = "PLANA_SECRET_REAL_KEYRING_CHILD"

func TestRealKeyring(t *testing.T) {
	if os.Getenv(childEnv) == "1" {
		realKeyring(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRealKeyring$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("real keyring test failed: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Skipf("no OS keyring answers (set PLANA_REQUIRE_KEYRING=1 to fail instead):\n%s", out)
	}
}

func realKeyring(t *testing.T) {
	s := NewKeyring(5 * time.Second)
	if err := Probe(s); err != nil {
		if errors.Is(err, ErrUnavailable) && os.Getenv("PLANA_REQUIRE_KEYRING") != "1" {
			t.Skipf("no OS keyring: %v", err)
		}
		t.Fatalf("Probe: %v", err)
	}
	name := "test:" + t.Name()
	t.Cleanup(func() { _ = s.Delete(name) })
	if err := s.Set(name, "value-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(name, "value-2"); err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if got, err := s.Get(name); err != nil || got != "value-2" {
		t.Fatalf("Get after overwrite: err = %v, value matches = %v", err, got == "value-2")
	}
	if err := s.Delete(name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(name); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	if err := s.Set(name, strings.Repeat("x", MaxValueLen+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized Set: err = %v, want ErrTooLarge", err)
	}
}
