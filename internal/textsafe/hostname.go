package textsafe

import (
	"strings"
	"unicode/utf8"
)

// MaxHostName bounds a machine's name as plana writes it into every
// request's User-Agent and each successor's lineage, which must fit BOS's
// 500 characters of description.
const MaxHostName = 64

// HostName is h in a host name's alphabet, as the User-Agent's comment
// ("(OS; HOST)") and a lineage's " on HOST" carry it: letters, digits, '.',
// '-' and '_', starting with a letter or digit, any other character made
// '-', at most MaxHostName bytes; "" when nothing of h is left. Whatever the
// OS or a caller gives, nothing in it can end the comment, split a line or
// act on a terminal.
func HostName(h string) string {
	var b strings.Builder
	for _, r := range strings.TrimSpace(h) {
		if b.Len() == MaxHostName {
			break
		}
		if r < utf8.RuneSelf && (r == '.' || r == '-' || r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9') {
			b.WriteRune(r)
			continue
		}
		b.WriteByte('-')
	}
	return strings.TrimLeft(b.String(), "._-")
}
