package lineage

import (
	"regexp"
	"strconv"
	"strings"
)

// yearSuffix matches the " (2025)" or " (2025-2)" a rotated key carries.
var yearSuffix = regexp.MustCompile(`^(.*?)\s*\((\d{4})(?:-(\d+))?\)\s*$`)

// SuccessorName names the key that replaces one called old, the way the
// procedure asks: the old name with the current year, "Nightly stock sync
// (2025)" → "Nightly stock sync (2026)"; no year suffix → one is appended;
// a name already taken (by an active or a revoked key) → "(2026-2)",
// "(2026-3)"… taken must describe a finite set.
func SuccessorName(old string, year int, taken func(string) bool) string {
	base := baseName(old)
	suffix := func(s string) string {
		if base == "" {
			return "(" + s + ")"
		}
		return base + " (" + s + ")"
	}
	y := strconv.Itoa(year)
	name := suffix(y)
	for n := 2; taken(name); n++ {
		name = suffix(y + "-" + strconv.Itoa(n))
	}
	return name
}

var bareSuffix = regexp.MustCompile(`^\(\d{4}(?:-\d+)?\)$`)

// IsSuccessorName reports whether SuccessorName could have given name to a
// successor of old, whatever the year: what --rebuild looks for.
func IsSuccessorName(old, name string) bool {
	base := baseName(old)
	if base != "" {
		var ok bool
		if name, ok = strings.CutPrefix(name, base+" "); !ok {
			return false
		}
	}
	return bareSuffix.MatchString(name)
}

// baseName is a name without its year suffix: keys that can succeed one
// another by the name rule share it.
func baseName(name string) string {
	base := strings.TrimSpace(name)
	if m := yearSuffix.FindStringSubmatch(base); m != nil {
		base = strings.TrimSpace(m[1])
	}
	return base
}
