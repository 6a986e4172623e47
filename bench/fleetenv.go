package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/plana-cli/plana/client"
	"github.com/plana-cli/plana/emulator"
	"github.com/plana-cli/plana/rotate/target"
)

// keyringSession starts one throwaway Secret Service for the whole
// section, so plana's keyring entries outlive each command, and returns
// its bus address.
func (b *bench) keyringSession() (string, func(), error) {
	cmd := exec.Command(filepath.Join(b.root, "scripts", "with-keyring.sh"), "sh", "-c", `echo "bus=$DBUS_SESSION_BUS_ADDRESS"; exec sleep 86400`)
	// A group of its own, stopped whole: killing the script alone left its
	// D-Bus session, the keyring daemon and the sleep running after each bench.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM); cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	bus, ok := strings.CutPrefix(strings.TrimSpace(line), "bus=")
	if err != nil || !ok || bus == "" {
		stop()
		return "", nil, errors.New("no Secret Service for plana: install dbus and gnome-keyring (see scripts/with-keyring.sh)")
	}
	return bus, stop, nil
}

// fleetEnv is a fresh emulator with n due keys, each with its env file and
// its automation, and plana's environment to run against it through a
// counting proxy.
type fleetEnv struct {
	env    []string
	names  []string
	proxy  *countingProxy
	failed *atomic.Int64
	stop   func()
}

// setupFleet seeds n due keys with their env files and automations; the
// profile gives every key its env file and the quiet period quiet.
func (b *bench) setupFleet(ctx context.Context, bus string, n int, quiet string) (*fleetEnv, error) {
	dir, err := os.MkdirTemp(b.dir, "fleet-")
	if err != nil {
		return nil, err
	}
	db := filepath.Join(dir, "bos.db")
	admin, plains, keys, err := seedFleet(ctx, db, n)
	if err != nil {
		return nil, err
	}
	emu, err := startServer("fleet", b.bin["bos-emulator"], filepath.Join(dir, "emulator.log"),
		"--listen", "127.0.0.1:0", "--db", db, "--bcrypt-cost", fmt.Sprint(fleetCost), "--dev-endpoints", "--quiet")
	if err != nil {
		return nil, err
	}
	proxy, err := newCountingProxy(emu.url)
	if err != nil {
		emu.stop()
		return nil, err
	}
	fe := &fleetEnv{proxy: proxy, failed: new(atomic.Int64), names: make([]string, n)}
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "profiles:\n  default:\n    poll_interval: %s\n    rotation:\n      quiet_period: %s\n      targets:\n", fleetPoll, quiet)
	envs := make([]string, n)
	for i, k := range keys {
		envs[i], fe.names[i] = filepath.Join(dir, fmt.Sprintf("job%03d.env", i)), k.Name
		if err := os.WriteFile(envs[i], []byte("PLANA_KEY="+plains[i]+"\n"), 0o600); err != nil {
			return nil, err
		}
		fmt.Fprintf(&cfg, "        - match: %q\n          to: [%q]\n", k.Name, "env-file:"+envs[i])
	}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(filepath.Join(home, ".config", "plana"), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(home, ".config", "plana", "config.yaml"), []byte(cfg.String()), 0o600); err != nil {
		return nil, err
	}
	fe.env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home, "NO_COLOR=1",
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"DBUS_SESSION_BUS_ADDRESS=" + bus,
		"PLANA_API_URL=" + proxy.srv.URL, "PLANA_TOKEN=" + admin,
	}
	proxy.keys[admin] = "management"

	autoCtx, stopAutos := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range envs {
		wg.Add(1)
		go func() { defer wg.Done(); automate(autoCtx, emu.url, envs[i], fmt.Sprintf("job%03d/1.0", i), fe.failed) }()
	}
	fe.stop = func() { stopAutos(); wg.Wait(); proxy.srv.Close(); emu.stop() }
	// Let every automation establish its cadence on the old key.
	time.Sleep(3 * fleetEvery) // the automations' own pace, not a wait for state
	return fe, nil
}

// seedFleet makes a demo workspace plus n keys issued by fleetOwner 400
// days ago, and returns the admin's key and the fleet's plaintexts.
func seedFleet(ctx context.Context, db string, n int) (string, []string, []client.APIKey, error) {
	s, err := emulator.New(emulator.Config{DBPath: db, BcryptCost: fleetCost})
	if err != nil {
		return "", nil, nil, err
	}
	defer s.Close()
	res, err := s.SeedDemo(ctx)
	if err != nil {
		return "", nil, nil, err
	}
	owner, err := s.CreateUser(ctx, fleetOwner, "member", []string{"stock:read"})
	if err != nil {
		return "", nil, nil, err
	}
	plains := make([]string, n)
	keys := make([]client.APIKey, n)
	for i := range n {
		if plains[i], keys[i], err = s.MintKey(ctx, owner.ID, fmt.Sprintf("Fleet job %03d (2025)", i), []string{"stock:read"}, s.Now().Add(-400*24*time.Hour)); err != nil {
			return "", nil, nil, err
		}
	}
	return res.AdminToken, plains, keys, nil
}

// automate is one automation: every fleetEvery it re-reads its env file and
// calls with PLANA_KEY_NEW first, PLANA_KEY as the fallback.
func automate(ctx context.Context, url, envFile, ua string, failed *atomic.Int64) {
	t := time.NewTicker(fleetEvery)
	defer t.Stop()
	for {
		data, err := os.ReadFile(envFile)
		var keys []string
		for _, name := range []string{target.NewKeySlot, target.KeySlot} {
			if v, ok := target.LookupEnv(data, name); ok && err == nil {
				keys = append(keys, v)
			}
		}
		c, cerr := client.New(url, client.WithKeys(keys...), client.WithUserAgent(ua), client.WithRetry(1, time.Second))
		if cerr != nil || len(keys) == 0 {
			failed.Add(1)
		} else if _, err := c.Do(ctx, client.Request{Method: http.MethodGet, Path: "/v1/stock-levels"}, nil); err != nil && ctx.Err() == nil {
			failed.Add(1)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
