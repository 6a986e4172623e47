package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// How long the harness waits for a process to come up or to stop.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 15 * time.Second
)

// automationInterval is fast so a script sees many calls in a few seconds,
// and a quiet period of a few seconds is meaningful.
const automationInterval = "200ms"

type stateKey struct{}

// scriptState is what one script's custom commands share.
type scriptState struct {
	work   string
	emu    *proc
	emuURL string
	autos  map[string]*proc
	known  []string // plaintexts seen so far; see knownSecrets
	probe  *prober  // see cmdProbe
	// holdFrom is the size of emulator.log when the last hold was armed:
	// held looks for its line after it.
	holdFrom int64
	// started is when the emulator first started: every key created later
	// was created by the script (the seed's keys are days older), and the
	// emulator's clock only moves forward from the local clock.
	started time.Time
}

func state(ts *testscript.TestScript) *scriptState {
	return ts.Value(stateKey{}).(*scriptState)
}

// proc is a background process whose stderr goes to a log file in $WORK.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // valid once done is closed
}

// startProc starts argv with the script's environment, stderr appended to
// logPath. If ready is non-nil it is fed stderr lines until it returns true
// (or the process exits, or startTimeout passes); the rest of stderr is
// copied to the log.
func startProc(ts *testscript.TestScript, name, logPath string, argv []string, ready func(line string) bool) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	path, err := exec.LookPath(filepath.Join(binDir, argv[0]))
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Dir = state(ts).work
	cmd.Env = scriptEnv(ts)
	pr, pw, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		logf.Close()
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	pw.Close()
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}

	readyc := make(chan bool, 1)
	go func() {
		defer logf.Close()
		sc := bufio.NewScanner(pr)
		signalled := ready == nil
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if !signalled && ready(line) {
				signalled = true
				readyc <- true
			}
		}
		if !signalled {
			readyc <- false
		}
		// The scanner stops at a line longer than its buffer; keep draining
		// so the process never blocks on a full pipe.
		_, _ = io.Copy(logf, pr)
		pr.Close()
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	if ready == nil {
		return p, nil
	}
	select {
	case ok := <-readyc:
		if ok {
			return p, nil
		}
		<-p.done
		return nil, fmt.Errorf("%s exited before it was ready (%v); its log:\n%s", name, p.err, tail(logPath))
	case <-time.After(startTimeout):
		p.kill()
		return nil, fmt.Errorf("%s not ready after %s; its log:\n%s", name, startTimeout, tail(logPath))
	}
}

// stop sends SIGTERM and waits; it reports how the process ended.
func (p *proc) stop() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s had already exited: %v", p.name, p.err)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(stopTimeout):
		p.kill()
		return fmt.Errorf("%s did not exit within %s of SIGTERM; killed", p.name, stopTimeout)
	}
}

func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

func (st *scriptState) stopAll() {
	if st.probe != nil {
		st.probe.stop()
	}
	for _, p := range st.autos {
		p.kill()
	}
	if st.emu != nil {
		st.emu.kill()
	}
}

// scriptEnv is the environment for a background process. testscript offers
// no way to read a script's whole environment, so it is rebuilt from the
// variables the harness knows of, as the script has them now.
func scriptEnv(ts *testscript.TestScript) []string {
	names := []string{"PATH", "HOME", "TMPDIR", "WORK", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME",
		"NO_COLOR", "PLANA_PROFILE", "PLANA_API_URL", "PLANA_TOKEN", runMarker}
	names = append(append(names, envPassThrough...), storeEnv...)
	var env []string
	for _, n := range names {
		if v := ts.Getenv(n); v != "" {
			env = append(env, n+"="+v)
		}
	}
	return env
}

// tail returns the end of a log file, for failure messages.
func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

var listeningRe = regexp.MustCompile(`^bos-emulator: listening on (http://\S+)$`)

// cmdEmulator: emulator start [-member] [flags...] | restart [-member] [flags...] | stop | advance DURATION
func cmdEmulator(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! emulator")
	}
	if len(args) == 0 {
		ts.Fatalf("usage: emulator start|restart|stop|advance")
	}
	st := state(ts)
	switch args[0] {
	case "start":
		if st.emu != nil {
			ts.Fatalf("emulator already started; use emulator restart")
		}
		ts.Check(st.startEmulator(ts, "127.0.0.1:0", args[1:]))
	case "restart":
		if st.emuURL == "" {
			ts.Fatalf("emulator not started")
		}
		// After emulator stop, restart brings BOS back after an outage.
		if st.emu != nil {
			if err := st.emu.stop(); err != nil {
				ts.Fatalf("stopping the emulator: %v", err)
			}
			st.emu = nil
		}
		// Same address, so PLANA_API_URL and running automations stay
		// valid; the flags given here replace those of the last start, so
		// faults can be switched off.
		ts.Check(st.startEmulator(ts, strings.TrimPrefix(st.emuURL, "http://"), args[1:]))
	case "stop":
		if st.emu == nil {
			ts.Fatalf("emulator not started")
		}
		err := st.emu.stop()
		st.emu = nil
		if err != nil {
			ts.Fatalf("stopping the emulator: %v", err)
		}
	case "advance":
		if len(args) != 2 {
			ts.Fatalf("usage: emulator advance DURATION")
		}
		if st.emu == nil {
			ts.Fatalf("emulator not started")
		}
		body, _ := json.Marshal(map[string]string{"advance": args[1]})
		resp, err := http.Post(st.emuURL+"/_emulator/clock", "application/json", bytes.NewReader(body))
		ts.Check(err)
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			ts.Fatalf("advancing the clock: %s: %s", resp.Status, data)
		}
		fmt.Fprintf(ts.Stdout(), "%s\n", data)
	default:
		ts.Fatalf("unknown emulator subcommand %q", args[0])
	}
}

// memberTokenFile is where `emulator start -member` has the demo write the
// member's management key, for `login -member` and `tokenenv -member`.
const memberTokenFile = "member.token"

func (st *scriptState) startEmulator(ts *testscript.TestScript, listen string, flags []string) error {
	if st.started.IsZero() {
		st.started = time.Now()
	}
	if len(flags) > 0 && flags[0] == "-member" {
		flags = append([]string{"--member-token-file", filepath.Join(st.work, memberTokenFile)}, flags[1:]...)
	}
	argv := append([]string{"bos-emulator",
		"--listen", listen,
		"--db", filepath.Join(st.work, "bos.db"),
		"--dev-endpoints",
		"--bcrypt-cost", "4",
		"--seed", "demo",
		"--token-file", filepath.Join(st.work, "token"),
		"--automation-env-file", filepath.Join(st.work, "automation.env"),
	}, flags...)
	var url string
	p, err := startProc(ts, "bos-emulator", filepath.Join(st.work, "emulator.log"), argv, func(line string) bool {
		if m := listeningRe.FindStringSubmatch(line); m != nil {
			url = m[1]
			return true
		}
		return false
	})
	if err != nil {
		return err
	}
	st.emu, st.emuURL = p, url
	ts.Setenv("PLANA_API_URL", url)
	knownSecrets(ts)
	return nil
}

// statsOf reads an automation's stats file.
type stats struct {
	Calls      int64  `json:"calls"`
	Failures   int64  `json:"failures"`
	Refused    int64  `json:"refused"`
	LastPrefix string `json:"last_prefix"`
	LastError  string `json:"last_error"`
}

func (st *scriptState) statsPath(name string) string {
	return filepath.Join(st.work, name+".stats.json")
}

func (st *scriptState) readStats(name string) (stats, error) {
	var s stats
	data, err := os.ReadFile(st.statsPath(name))
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(data, &s)
}

func printStats(ts *testscript.TestScript, s stats) {
	fmt.Fprintf(ts.Stdout(), "calls %d\nfailures %d\nrefused %d\nlast_prefix %s\n", s.Calls, s.Failures, s.Refused, s.LastPrefix)
	if s.LastError != "" {
		fmt.Fprintf(ts.Stdout(), "last_error %s\n", s.LastError)
	}
}

// cmdAutomation: automation start NAME ENVFILE [flags...] | stop NAME |
// stats NAME | wait NAME CALLS
func cmdAutomation(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! automation")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: automation start NAME ENVFILE [--user-agent UA] | stop NAME | stats NAME | wait NAME CALLS")
	}
	st := state(ts)
	name := args[1]
	p := st.autos[name]
	if args[0] != "start" && p == nil {
		ts.Fatalf("no automation %q started", name)
	}
	switch args[0] {
	case "start":
		if len(args) < 3 {
			ts.Fatalf("usage: automation start NAME ENVFILE|- [flags...]")
		}
		if p != nil {
			ts.Fatalf("automation %q already started", name)
		}
		if st.emuURL == "" {
			ts.Fatalf("start the emulator first")
		}
		os.Remove(st.statsPath(name))
		argv := []string{"automation"}
		if args[2] != "-" {
			argv = append(argv, "--env-file", ts.MkAbs(args[2]))
		}
		argv = append(append(argv, "--api-url", st.emuURL,
			"--interval", automationInterval, "--stats-file", st.statsPath(name)), args[3:]...)
		p, err := startProc(ts, "automation "+name, filepath.Join(st.work, name+".log"), argv, nil)
		ts.Check(err)
		st.autos[name] = p
		// Wait for its first call so the script starts from a running worker.
		ts.Check(waitUntil(startTimeout, "the first call of automation "+name, func() (bool, error) {
			select {
			case <-p.done:
				return false, fmt.Errorf("automation %s exited: %v; its log:\n%s", name, p.err, tail(p.log))
			default:
			}
			s, err := st.readStats(name)
			return err == nil && s.Calls > 0, nil
		}))
	case "stop":
		err := p.stop()
		delete(st.autos, name)
		if err != nil {
			ts.Fatalf("automation %s: %v; its log:\n%s", name, err, tail(p.log))
		}
		s, err := st.readStats(name)
		ts.Check(err)
		printStats(ts, s)
	case "stats":
		s, err := st.readStats(name)
		ts.Check(err)
		printStats(ts, s)
	case "wait":
		// wait NAME N: until N more calls have been made from now.
		if len(args) != 3 {
			ts.Fatalf("usage: automation wait NAME CALLS")
		}
		var n int64
		if _, err := fmt.Sscan(args[2], &n); err != nil {
			ts.Fatalf("automation wait: CALLS %q is not a number", args[2])
		}
		s0, err := st.readStats(name)
		ts.Check(err)
		ts.Check(waitUntil(startTimeout, fmt.Sprintf("%d more calls of automation %s", n, name), func() (bool, error) {
			s, err := st.readStats(name)
			return err == nil && s.Calls >= s0.Calls+n, nil
		}))
	default:
		ts.Fatalf("unknown automation subcommand %q", args[0])
	}
}

// waitUntil polls cond every 50ms until it holds, fails, or d passes.
func waitUntil(d time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(d)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
