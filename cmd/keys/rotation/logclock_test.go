package rotation

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/cmd/cmdutil/cmdtest"
)

// Issue 19 (23): keys log --since counts back from BOS's present, the
// clock its history is stamped in, not from this machine's. BOS's clock is
// 400 days ahead here: a rotation begun now by this machine's clock is 400
// days old by BOS's, and --since 30d leaves it out.
func TestLogSinceOnBOSClock(t *testing.T) {
	t.Parallel()
	e := cmdtest.New(t)
	_, created := e.SeedSuccessor()
	e.Emu.Advance(400 * 24 * time.Hour)
	logSince := func(since string) string {
		t.Helper()
		e.Out.Reset()
		cmd := NewCmdLog(e.Factory, func(ctx context.Context, o *LogOptions) error {
			o.Now = time.Now // this machine's clock, not BOS's
			return logRun(ctx, o)
		})
		if err := e.Run(cmd, "--source", "server", "--since", since, "-o", "csv"); err != nil {
			t.Fatal(err)
		}
		return e.Out.String()
	}
	if out := logSince("30d"); strings.Contains(out, created.APIKey.Prefix) {
		t.Errorf("--since 30d shows a rotation 400 days old by BOS's clock:\n%s", out)
	}
	if out := logSince("500d"); !strings.Contains(out, created.APIKey.Prefix) {
		t.Errorf("--since 500d leaves out a rotation 400 days old:\n%s", out)
	}
}
