package target

import (
	"strings"
	"unicode/utf8"

	"github.com/plana-cli/plana/client"
)

const (
	stderrTail = 2048
	// stderrKeep is how much of the stderr stream is kept to redact before
	// the tail is cut from it: more than the tail, so that a key the cut
	// would split is still whole when the redaction looks for it.
	stderrKeep = 4 * stderrTail
	// minKeyRun is the shortest run of the key's characters that is
	// redacted: shorter runs are too common by chance to mean anything.
	minKeyRun = 8
)

// tailBuffer keeps the last stderrKeep bytes written to it, and whether it
// dropped any before them.
type tailBuffer struct {
	b   []byte
	cut bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > stderrKeep {
		t.b, t.cut = append([]byte(nil), t.b[len(t.b)-stderrKeep:]...), true
	}
	return len(p), nil
}

// text is the kept stderr with every run of the key redacted, then cut to
// its last stderrTail bytes: redacting after the cut would miss a key the
// cut split, and leave most of it in the error and in -o json.
func (t *tailBuffer) text(key string) string {
	b := t.b
	if t.cut {
		// Where the stream was cut, a key may have lost its head and what
		// is left of it may be too short to recognise: drop what could be
		// left of one.
		n := 0
		for n < len(b) && n < len(key) && isKeyChar(rune(b[n])) {
			n++
		}
		b = b[n:]
	}
	s := client.Redact(redactKey(string(b), key))
	if len(s) > stderrTail {
		i := len(s) - stderrTail
		for i < len(s) && !utf8.RuneStart(s[i]) {
			i++
		}
		s = s[i:]
	}
	return strings.TrimSpace(s)
}

func isKeyChar(r rune) bool {
	return r == '_' || r < utf8.RuneSelf && strings.ContainsRune(client.Base62, r)
}

// redactKey replaces every run of minKeyRun or more of key's characters in
// s (any part of it, not only the whole key) with "…", keeping what falls
// in the key's public prefix: "pa_live_AB7K2XYZ…" for the whole key, as
// the other messages show a key. A run within the public prefix alone is
// left as it is.
func redactKey(s, key string) string {
	pub := len(client.PrefixOf(key))
	var out strings.Builder
	for i := 0; i < len(s); {
		n, at := longestKeyRun(s[i:], key, pub)
		if n < minKeyRun || at+n <= pub {
			out.WriteByte(s[i])
			i++
			continue
		}
		if at < pub {
			out.WriteString(key[at:pub])
		}
		out.WriteString("…")
		i += n
	}
	return out.String()
}

// longestKeyRun is the longest prefix of s that is a substring of key, and
// where in key it starts; of two as long, the one reaching past the public
// prefix (pub bytes) wins.
func longestKeyRun(s, key string, pub int) (n, at int) {
	for j := 0; j < len(key); j++ {
		k := 0
		for k < len(s) && j+k < len(key) && s[k] == key[j+k] {
			k++
		}
		if k > n || k == n && k > 0 && j+k > pub && at+n <= pub {
			n, at = k, j
		}
	}
	return n, at
}
