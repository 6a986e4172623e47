package main

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// figure is one measured result, with its goal when the issue sets one.
type figure struct {
	section, name, value string
	goal                 string // "" when the figure is informative only
	met                  *bool
	why                  string // by how much, and why, when a goal is missed
}

type report struct {
	machine []string
	quick   bool
	elapsed time.Duration
	figures []figure
	// blocks are markdown paragraphs and tables per section, in order.
	blocks map[string][]string
	notes  map[string][]string
}

func newReport() *report {
	return &report{blocks: map[string][]string{}, notes: map[string][]string{}}
}

func (r *report) info(section, name, value string) {
	r.figures = append(r.figures, figure{section: section, name: name, value: value})
}

func (r *report) goal(section, name, value, goal string, met bool, why string) {
	r.figures = append(r.figures, figure{section: section, name: name, value: value, goal: goal, met: &met, why: why})
}

func (r *report) block(section, md string) { r.blocks[section] = append(r.blocks[section], md) }

func (r *report) note(section, s string) { r.notes[section] = append(r.notes[section], s) }

var sectionTitles = []struct{ key, title string }{
	{"throughput", "1–2. Authenticated throughput, cold keys, durability, revocation under load"},
	{"cli", "3. CLI start and list"},
	{"calls", "4. Calls per rotation"},
	{"scale", "5. Scale: 100,000 keys, 1,000,000 log entries"},
	{"go", "6. Go benchmarks"},
	{"fleet", "7. Fleet: 100 keys at once"},
	{"audit", "8. Audit: 1,000,000 log entries, every key in one pass"},
	{"reads", "9. A cron run reads once: --due --no-wait with 1 and 100 rotations under way"},
}

func verdict(f figure) string {
	switch {
	case f.met == nil:
		return ""
	case *f.met:
		return "met"
	}
	return "MISSED"
}

// table is what make bench prints: one line per figure.
func (r *report) table() string {
	var sb strings.Builder
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SECTION\tFIGURE\tVALUE\tGOAL\t")
	for _, f := range r.figures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.section, f.name, f.value, f.goal, verdict(f))
	}
	tw.Flush()
	for _, s := range sectionTitles {
		for _, n := range r.notes[s.key] {
			fmt.Fprintf(&sb, "%s: %s\n", s.key, n)
		}
	}
	fmt.Fprintf(&sb, "make bench took %s\n", r.elapsed.Round(time.Second))
	return sb.String()
}

// fixes is the record of the hot paths found and fixed, with the figures
// measured before and after each fix; the run's own figures are above it.
//
//go:embed fixes.md
var fixes string

func (r *report) markdown() string {
	var sb strings.Builder
	sb.WriteString("# Benchmarks\n\n")
	sb.WriteString("Written by `make bench` (`go run ./bench`), which rebuilds everything it measures, runs every\n")
	sb.WriteString("figure below in one go on one machine, and rewrites this file. Do not edit it by hand.\n\n")
	if r.quick {
		sb.WriteString("**This run used `-quick`: short runs and small data to check the bench itself. The figures are not meaningful.**\n\n")
	}
	sb.WriteString("## Machine\n\n")
	for _, m := range r.machine {
		sb.WriteString("- " + m + "\n")
	}
	fmt.Fprintf(&sb, "- Load average at the end: %s\n", loadavg())
	fmt.Fprintf(&sb, "- `make bench` took %s\n\n", r.elapsed.Round(time.Second))

	sb.WriteString("## Summary\n\n| section | figure | value | goal | |\n|---|---|---|---|---|\n")
	for _, f := range r.figures {
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s |\n", f.section, f.name, f.value, f.goal, verdict(f))
	}
	sb.WriteString("\n")
	var missed []figure
	for _, f := range r.figures {
		if f.met != nil && !*f.met {
			missed = append(missed, f)
		}
	}
	if len(missed) > 0 {
		sb.WriteString("### Goals missed\n\n")
		for _, f := range missed {
			fmt.Fprintf(&sb, "- **%s, %s**: %s against a goal of %s. %s\n", f.section, f.name, f.value, f.goal, f.why)
		}
		sb.WriteString("\n")
	}
	for _, s := range sectionTitles {
		if len(r.blocks[s.key]) == 0 && len(r.notes[s.key]) == 0 {
			continue
		}
		fmt.Fprintf(&sb, "## %s\n\n", s.title)
		for _, b := range r.blocks[s.key] {
			sb.WriteString(strings.TrimRight(b, "\n") + "\n\n")
		}
		for _, n := range r.notes[s.key] {
			sb.WriteString("- " + n + "\n")
		}
		if len(r.notes[s.key]) > 0 {
			sb.WriteString("\n")
		}
	}
	sb.WriteString(fixes)
	return sb.String()
}

func describeMachine() []string {
	var out []string
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				if _, v, ok := strings.Cut(line, ":"); ok {
					cpu = strings.TrimSpace(v)
					break
				}
			}
		}
	}
	out = append(out, fmt.Sprintf("CPU: %s, %d cores (GOMAXPROCS %d)", cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0)))
	if kib := meminfoKiB("MemTotal:"); kib > 0 {
		out = append(out, fmt.Sprintf("RAM: %.1f GiB", float64(kib)/(1<<20)))
	}
	if b, err := exec.Command("uname", "-sr").Output(); err == nil {
		out = append(out, "Kernel: "+strings.TrimSpace(string(b)))
	}
	if b, err := exec.Command("go", "version").Output(); err == nil {
		out = append(out, "Go: "+strings.TrimSpace(strings.TrimPrefix(string(b), "go version ")))
	}
	if b, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		out = append(out, "Commit: "+strings.TrimSpace(string(b)))
	}
	out = append(out, "Date: "+time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	out = append(out, "Load average (1, 5, 15 min) at the start: "+loadavg())
	return out
}

// loadavg says how busy the machine was: figures from a shared machine
// move with what else runs on it.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}

func meminfoKiB(field string) int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			var n int64
			fmt.Sscan(strings.TrimPrefix(line, field), &n)
			return n
		}
	}
	return 0
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d >= 10*time.Microsecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.2f µs", float64(d)/float64(time.Microsecond))
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

func pct(x float64) string { return fmt.Sprintf("%.0f%%", x*100) }
