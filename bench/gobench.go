package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// goBenchmarks runs the packages' Go benchmarks and keeps their lines.
func (b *bench) goBenchmarks(ctx context.Context) error {
	const sec = "go"
	benchtime := "1s"
	if b.quick {
		benchtime = "1x"
	}
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", ".", "-benchmem", "-benchtime", benchtime,
		"./emulator/", "./client/")
	cmd.Dir = b.root
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go test -bench: %v\n%s", err, tail(out))
	}
	var lines []string
	pkg := ""
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "pkg: "):
			pkg = strings.TrimPrefix(l, "pkg: github.com/plana-cli/plana/")
		case strings.HasPrefix(l, "Benchmark"):
			f := strings.Fields(l)
			if len(f) < 4 {
				continue
			}
			name := strings.TrimSuffix(f[0], fmt.Sprintf("-%d", numCPU()))
			// name, iterations, then value-unit pairs.
			var metrics []string
			for i := 2; i+1 < len(f); i += 2 {
				v, unit := f[i], f[i+1]
				if unit == "ns/op" {
					if ns, err := strconv.ParseFloat(v, 64); err == nil {
						v, unit = ms(time.Duration(ns)), "/op"
					}
				}
				if unit == "/op" {
					metrics = append(metrics, v+unit)
				} else {
					metrics = append(metrics, v+" "+unit)
				}
			}
			lines = append(lines, fmt.Sprintf("| %s | %s | %s |", pkg, name, strings.Join(metrics, ", ")))
			if len(metrics) > 0 {
				b.rep.info(sec, pkg+" "+name, metrics[0])
			}
		}
	}
	b.rep.block(sec, fmt.Sprintf("`go test -run '^$' -bench . -benchmem -benchtime %s ./emulator/ ./client/`:\n\n| package | benchmark | result |\n|---|---|---|\n%s",
		benchtime, strings.Join(lines, "\n")))
	return nil
}
