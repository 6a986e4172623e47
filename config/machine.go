package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/plana-cli/plana/internal/textsafe"
)

// MaxMachineName bounds machine_name: it goes into every request's
// User-Agent, and into a successor's lineage, which must fit BOS's 500
// characters of description.
const MaxMachineName = textsafe.MaxHostName

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

// hostMachineName makes the OS's host name fit machineNameRe
// (textsafe.HostName). A host with no usable name is "unknown".
func hostMachineName(h string) string {
	if name := textsafe.HostName(h); name != "" {
		return name
	}
	return "unknown"
}
