package config

import (
	"fmt"
	"regexp"
	"strings"
)

// MaxMachineName bounds machine_name: it goes into every request's
// User-Agent, and into a successor's lineage, which must fit BOS's 500
// characters of description.
const MaxMachineName = 64

// machineNameRe is a host name's alphabet: nothing that could end the
// User-Agent's comment ("(OS; HOST)"), split a log line or act on a
// terminal.
var machineNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

const machineNameHint = "use letters, digits, '.', '-' and '_', starting with a letter or digit, at most 64 characters (e.g. ana-laptop)"

// ParseMachineName checks a machine name the user gave (machine_name,
// PLANA_MACHINE_NAME, keys rotate --stored-on).
func ParseMachineName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxMachineName || !machineNameRe.MatchString(s) {
		return "", fmt.Errorf("machine name %q: %s", s, machineNameHint)
	}
	return s, nil
}

// hostMachineName makes the OS's host name fit machineNameRe: any other
// character becomes '-', and it is cut to MaxMachineName. A host with no
// usable name is "unknown".
func hostMachineName(h string) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(h) {
		if b.Len() == MaxMachineName {
			break
		}
		if r < 0x80 && (r == '.' || r == '-' || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			b.WriteRune(r)
			continue
		}
		b.WriteByte('-')
	}
	name := strings.TrimLeft(b.String(), "._-")
	if name == "" {
		return "unknown"
	}
	return name
}
