// Command bench measures plana and bos-emulator side by side with their
// nearest baselines and rewrites docs/benchmarks.md: `make bench`.
//
// Every figure is taken in one run on one machine: the emulator against a
// bare net/http handler under the same load generator, plana's start-up
// against a hello-world built the same way, `plana keys list` against curl
// fetching the same pages. Keys are read from the files the emulator writes
// and stay in this process's memory: never in argv, never in output.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

func numCPU() int { return runtime.NumCPU() }

type bench struct {
	root  string // the repository
	dir   string // scratch: databases, logs, binaries
	bin   map[string]string
	quick bool
	conc  int
	rep   *report
}

func main() {
	doc := flag.String("doc", "docs/benchmarks.md", "rewrite this file with the results; empty: print only")
	quick := flag.Bool("quick", false, "short runs and small data, to check the bench itself (figures are not meaningful)")
	keep := flag.Bool("keep", false, "keep the scratch directory (databases, server logs)")
	only := flag.String("only", "", "run only these sections, comma-separated: throughput, cli, calls, scale, go, fleet, audit, reads")
	conc := flag.Int("c", 16, "concurrent connections of the load generator")
	flag.Parse()

	if err := run(*doc, *quick, *keep, *only, *conc); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

func run(doc string, quick, keep bool, only string, conc int) error {
	started := time.Now()
	// make bench passes its own start, so the time includes compiling the
	// bench, which on a fresh clone is a good part of it.
	if sec, err := strconv.ParseInt(os.Getenv("PLANA_BENCH_START"), 10, 64); err == nil && sec > 0 {
		started = time.Unix(sec, 0)
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "plana-bench-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintf(os.Stderr, "bench: scratch directory %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	b := &bench{root: root, dir: dir, quick: quick, conc: conc, rep: newReport()}
	b.rep.machine = describeMachine()
	b.rep.quick = quick

	step := func(name string) {
		fmt.Fprintf(os.Stderr, "bench: %s (%s)\n", name, time.Since(started).Round(time.Second))
	}
	step("building")
	if err := b.build(); err != nil {
		return err
	}
	ctx := context.Background()
	sections := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"throughput", b.throughput},
		{"cli", b.cli},
		{"calls", b.calls},
		{"scale", b.scale},
		{"go", b.goBenchmarks},
		{"fleet", b.fleet},
		{"audit", b.audit},
		{"reads", b.reads},
	}
	var failed []string
	for _, s := range sections {
		if only != "" && !strings.Contains(","+only+",", ","+s.name+",") {
			continue
		}
		step(s.name)
		if err := s.fn(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", s.name, err)
			b.rep.note(s.name, "FAILED: "+err.Error())
			failed = append(failed, s.name)
		}
	}
	b.rep.elapsed = time.Since(started)
	fmt.Print(b.rep.table())
	if doc != "" {
		if !filepath.IsAbs(doc) {
			doc = filepath.Join(root, doc)
		}
		if err := os.WriteFile(doc, []byte(b.rep.markdown()), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "bench: wrote %s in %s\n", doc, b.rep.elapsed.Round(time.Second))
	}
	if len(failed) > 0 {
		return fmt.Errorf("sections failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the bench inside the plana module (make bench)")
	}
	return filepath.Dir(mod), nil
}

// build compiles every binary the way `make build` does: CGO_ENABLED=0,
// -trimpath, -s -w. hello gets the same flags, so start-up compares like
// with like.
func (b *bench) build() error {
	binDir := filepath.Join(b.dir, "bin")
	pkgs := map[string]string{
		"plana":        "./cmd/plana",
		"bos-emulator": "./cmd/bos-emulator",
		"automation":   "./examples/automation",
		"bare":         "./bench/bare",
		"hello":        "./bench/hello",
	}
	args := []string{"build", "-trimpath", "-ldflags", "-s -w -X github.com/plana-cli/plana/internal/build.Version=bench", "-o", binDir + "/"}
	b.bin = map[string]string{}
	for name, pkg := range pkgs {
		args = append(args, pkg)
		b.bin[name] = filepath.Join(binDir, name)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = b.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// cliEnv is the environment plana runs in: a scratch home, so the user's
// config and keyring entries play no part.
func (b *bench) cliEnv(apiURL, token string) []string {
	home := filepath.Join(b.dir, "home")
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_STATE_HOME=" + filepath.Join(home, ".local", "state"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share"),
		"NO_COLOR=1",
	}
	if apiURL != "" {
		env = append(env, "PLANA_API_URL="+apiURL)
	}
	if token != "" {
		env = append(env, "PLANA_TOKEN="+token)
	}
	return env
}

func (b *bench) dur(full, quick time.Duration) time.Duration {
	if b.quick {
		return quick
	}
	return full
}

func (b *bench) n(full, quick int) int {
	if b.quick {
		return quick
	}
	return full
}
