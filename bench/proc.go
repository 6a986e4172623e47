package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is a bos-emulator or bare process started by the bench.
type server struct {
	name string
	cmd  *exec.Cmd
	url  string
	done chan error
}

var listeningRE = regexp.MustCompile(`listening on (http://\S+)`)

// startServer runs bin with args, its stderr in logPath, and waits for its
// "listening on" line.
func startServer(name, bin, logPath string, args ...string) (*server, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	s := &server{name: name, cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); lf.Close() }()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(logPath)
		if m := listeningRE.FindSubmatch(b); m != nil {
			s.url = string(m[1])
			return s, nil
		}
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("%s exited before listening (%v): %s", name, err, tail(b))
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.kill()
	return nil, fmt.Errorf("%s did not print its listening line within 2m", name)
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() error {
	if s == nil || s.cmd.Process == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(30 * time.Second):
		s.kill()
		return fmt.Errorf("%s ignored SIGTERM for 30s", s.name)
	}
}

// kill is kill -9: no chance to flush anything.
func (s *server) kill() {
	s.cmd.Process.Kill()
	err := <-s.done
	s.done <- err
}

// rssKiB is the process's resident set now.
func (s *server) rssKiB() int64 { return procStatusKiB(s.cmd.Process.Pid, "VmRSS:") }

// hwmKiB is the process's peak resident set so far.
func (s *server) hwmKiB() int64 { return procStatusKiB(s.cmd.Process.Pid, "VmHWM:") }

func procStatusKiB(pid int, field string) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			f := strings.Fields(strings.TrimPrefix(line, field))
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

// readKeyFile reads a plaintext the emulator wrote (a token file, or an env
// file's PLANA_KEY=...). The key stays in memory: never in argv or output.
func readKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if _, v, ok := strings.Cut(line, "="); ok {
			line = v
		}
		if line != "" {
			return line, nil
		}
	}
	return "", errors.New(path + " holds no key")
}
