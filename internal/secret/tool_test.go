//go:build !windows

package secret

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestToolRun runs a real child that echoes its stdin and environment on
// stderr and fails: the error keeps what it said, less the stdin it was
// given, anything shaped like a key, and the management key it never got.
func TestToolRun(t *testing.T) {
	key := "pa_test_ABCDEFGH" + strings.Repeat("x", 38)
	t.Setenv("PLANA_TOKEN", "pa_live_ZZZZZZZZ"+strings.Repeat("y", 38))
	dir := t.TempDir()
	script := filepath.Join(dir, "tool")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ncat >&2\necho \"token=[$PLANA_TOKEN] args=$*\" >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tool := Tool{Path: script}
	_, err := tool.Run(context.Background(), []byte("value: "+key+"\n"), "set", "x")
	var te *ToolError
	if !errors.As(err, &te) || te.ExitCode != 3 {
		t.Fatalf("got %v, want a ToolError with status 3", err)
	}
	msg := err.Error()
	if strings.Contains(msg, key[8:]) || strings.Contains(msg, "ZZZZZZZZ") {
		t.Errorf("the error carries a key or the token: %s", msg)
	}
	if !strings.Contains(msg, "[stdin]") || !strings.Contains(msg, "token=[]") || !strings.Contains(msg, "args=set x") {
		t.Errorf("the error lost what the tool said: %s", msg)
	}

	out, err := Tool{Path: "/bin/cat"}.Run(context.Background(), []byte("through stdin"))
	if err != nil || string(out) != "through stdin" {
		t.Errorf("cat gave %q, %v", out, err)
	}

	// A cancelled context kills the tool and what it started.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Tool{Path: "/bin/sh"}.Run(ctx, nil, "-c", "sleep 30 & wait")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Errorf("a hung tool: %v after %s", err, time.Since(start))
	}

	if _, err := FindTool("plana-no-such-tool", "install it with X"); err == nil || !strings.Contains(err.Error(), "install it with X") {
		t.Errorf("a missing tool: %v", err)
	}
}
