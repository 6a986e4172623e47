// Package textsafe makes text that others chose safe to print. A request
// path, a user agent or a key name comes from whoever calls the API; printed
// raw to a terminal or a log, an escape sequence in it can clear the screen,
// recolour the output or forge a line that seems to come from the program.
package textsafe

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Clean returns s with every character that could act on a terminal or split
// a log line written as an escape, and everything else (printable text in any
// script, spaces, backslashes) as it was:
//   - C0 controls (newline and tab included) and DEL as \xNN, so ESC is \x1b;
//   - C1 controls, Unicode line and paragraph separators and bidirectional
//     controls (which reorder what a reader sees) as \uNNNN;
//   - bytes that are not UTF-8 as \xNN: a lone 0x9b is CSI to some terminals.
//
// Clean allocates only when s needs escaping.
func Clean(s string) string { return clean(s, false) }

// CleanLines is Clean for messages plana writes around text others chose
// (an error naming a key, say): the newlines and tabs that lay out plana's
// own words stay, and everything else Clean escapes is escaped.
func CleanLines(s string) string { return clean(s, true) }

func clean(s string, lines bool) string {
	i := firstUnsafe(s, lines)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1, r < 0x80 && unsafeRune(r, lines):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r, lines):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// firstUnsafe is the byte offset of the first character clean escapes, or -1.
func firstUnsafe(s string, lines bool) int {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if unsafeRune(rune(c), lines) {
				return i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && n <= 1) || unsafeRune(r, lines) {
			return i
		}
		i += n
	}
	return -1
}

func unsafeRune(r rune, lines bool) bool {
	if lines && (r == '\n' || r == '\t') {
		return false
	}
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r)
}
