package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"time"
)

// runPlana runs plana with args and reports its exit code, its peak RSS in
// KiB and its output. The peak is read from /proc while plana runs:
// getrusage's ru_maxrss of a child starts from the forking parent's
// resident set, which would report the bench's own size.
func runPlana(ctx context.Context, bin string, env, args []string) (int, int64, []byte, error) {
	var out bytes.Buffer
	code, peak, _, err := runMeasured(ctx, bin, env, append(args, "--yes"), &out, &out)
	return code, peak, out.Bytes(), err
}

// runMeasured runs plana with args as given, its output to stdout and
// stderr, and reports its exit code, its peak RSS in KiB, as runPlana does,
// and the CPU time it used (user and system).
func runMeasured(ctx context.Context, bin string, env, args []string, stdout, stderr io.Writer) (int, int64, time.Duration, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var peak int64
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if kib := procStatusKiB(cmd.Process.Pid, "VmHWM:"); kib > peak {
			peak = kib
		}
		select {
		case err := <-done:
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				return 0, 0, 0, err
			}
			return cmd.ProcessState.ExitCode(), peak, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
		case <-tick.C:
		}
	}
}

// failures are the lines of plana's output that say what failed.
func failures(out []byte) string {
	if i := strings.Index(string(out), "panic:"); i >= 0 {
		return string(out[i:min(len(out), i+4000)])
	}
	var lines []string
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, "\tfailed\t") || strings.Contains(line, "warning") || strings.Contains(line, "rror") {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	if len(lines) == 0 {
		return tail(out)
	}
	return tail([]byte(strings.Join(lines, "\n")))
}
