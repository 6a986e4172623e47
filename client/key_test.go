package client

import (
	"errors"
	"strings"
	"testing"
)

// Test keys are built here, never real ones; they are still never logged.
const (
	validLive = "pa_live_AB7K2XYZ0123456789abcdefghijABCDEFGHIJkl14ucvy"
	validTest = "pa_test_zzzzzzzzZYXWVUTSRQPONMLKJIHGFEDCBA9876541oeTyY"
)

// testKey returns a well-formed key whose public id is id (8 base62 chars).
func testKey(id string) string {
	return FormatKey("live", id, strings.Repeat("s", SecretLen))
}

func TestParseKey(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Key
		wantErr string // substring of the error; "" when valid
	}{
		{name: "live", in: validLive, want: Key{Env: "live", PublicID: "AB7K2XYZ", Prefix: "pa_live_AB7K2XYZ"}},
		{name: "test", in: validTest, want: Key{Env: "test", PublicID: "zzzzzzzz", Prefix: "pa_test_zzzzzzzz"}},
		{name: "minted", in: FormatKey("test", "00000000", strings.Repeat("0", SecretLen)), want: Key{Env: "test", PublicID: "00000000", Prefix: "pa_test_00000000"}},
		{name: "wrong env", in: "pa_prod_" + validLive[8:], wantErr: "must start with"},
		{name: "no prefix", in: validLive[8:], wantErr: "must start with"},
		{name: "upper-case prefix", in: "PA_LIVE_" + validLive[8:], wantErr: "must start with"},
		{name: "bearer pasted with it", in: "Bearer " + validLive, wantErr: "must start with"},
		{name: "empty", in: "", wantErr: "must start with"},
		{name: "prefix only", in: LivePrefix, wantErr: "length 8"},
		{name: "truncated by one", in: validLive[:KeyLen-1], wantErr: "length 53"},
		{name: "one too many", in: validLive + "y", wantErr: "length 55"},
		{name: "trailing newline", in: validLive[:KeyLen-1] + "\n", wantErr: "not base62"},
		{name: "dash", in: validLive[:20] + "-" + validLive[21:], wantErr: "character 21 is not base62"},
		{name: "multibyte", in: validLive[:50] + "é" + validLive[52:], wantErr: "not base62"},
		{name: "bad checksum", in: validLive[:KeyLen-1] + "z", wantErr: "checksum"},
		{name: "swapped characters", in: validLive[:20] + validLive[21:22] + validLive[20:21] + validLive[22:], wantErr: "checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseKey() error = %v", err)
				}
				if got != tt.want {
					t.Errorf("ParseKey() = %+v, want %+v", got, tt.want)
				}
				if PrefixOf(tt.in) != tt.want.Prefix {
					t.Errorf("PrefixOf() = %q, want %q", PrefixOf(tt.in), tt.want.Prefix)
				}
				return
			}
			if !errors.Is(err, ErrMalformedKey) {
				t.Fatalf("ParseKey() error = %v, want ErrMalformedKey", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseKey() error = %q, want it to mention %q", err, tt.wantErr)
			}
			if len(tt.in) > 8 && strings.Contains(err.Error(), tt.in[8:]) {
				t.Errorf("ParseKey() error repeats the input")
			}
			if got != (Key{}) || PrefixOf(tt.in) != "" {
				t.Errorf("a refused key still yielded %+v / prefix %q", got, PrefixOf(tt.in))
			}
		})
	}
}

// Every single-character typo, at every position and to every other
// character, must be caught offline: that is what the checksum is for.
func TestParseKeyCatchesEveryOneCharTypo(t *testing.T) {
	alphabet := Base62 + "-_. é"
	for _, key := range []string{validLive, validTest} {
		for i := 0; i < KeyLen; i++ {
			for _, c := range []byte(alphabet) {
				if c == key[i] {
					continue
				}
				typo := key[:i] + string(c) + key[i+1:]
				if _, err := ParseKey(typo); err == nil {
					t.Fatalf("a typo at position %d (%q for %q) was accepted", i+1, c, key[i])
				}
			}
		}
	}
}

func TestKeyFitsBcrypt(t *testing.T) {
	const bcryptMaxBytes = 72 // bcrypt ignores (or refuses) anything longer
	for _, k := range []string{validLive, validTest, testKey("Zz09Zz09")} {
		if len(k) != KeyLen || KeyLen != 54 {
			t.Errorf("key length %d, KeyLen %d: want both 54", len(k), KeyLen)
		}
	}
	if KeyLen >= bcryptMaxBytes {
		t.Errorf("KeyLen %d does not fit bcrypt's %d bytes", KeyLen, bcryptMaxBytes)
	}
	if len(LivePrefix)+PublicIDLen+SecretLen+ChecksumLen != KeyLen {
		t.Errorf("the key's parts do not add up to KeyLen")
	}
}

func FuzzParseKey(f *testing.F) {
	// The committed corpus in testdata/fuzz/FuzzParseKey holds the edge
	// cases; these keep the target meaningful without it.
	f.Add(validLive)
	f.Add(validTest)
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedKey) {
				t.Errorf("error %v does not wrap ErrMalformedKey", err)
			}
			// Short inputs can match the fixed wording by chance ("pa_l"
			// is in `must start with "pa_live_"`); a key is 54 bytes.
			if len(s) >= 16 && strings.Contains(err.Error(), s) {
				t.Errorf("the error repeats its input")
			}
			return
		}
		if len(s) != KeyLen {
			t.Fatalf("accepted a key of %d bytes", len(s))
		}
		head := len(LivePrefix)
		if again := FormatKey(k.Env, k.PublicID, s[head+PublicIDLen:KeyLen-ChecksumLen]); again != s {
			t.Errorf("FormatKey does not round-trip an accepted key")
		}
		if k.Prefix != s[:head+PublicIDLen] || PrefixOf(s) != k.Prefix {
			t.Errorf("prefix %q is not the key's first %d bytes", k.Prefix, head+PublicIDLen)
		}
	})
}

func TestRedact(t *testing.T) {
	msg := "key " + validLive + " and " + validTest + " are revoked"
	got := Redact(msg)
	if strings.Contains(got, validLive[16:]) || strings.Contains(got, validTest[16:]) {
		t.Fatalf("Redact left a secret in place")
	}
	if want := "key pa_live_AB7K2XYZ… and pa_test_zzzzzzzz… are revoked"; got != want {
		t.Errorf("Redact() = %q, want %q", got, want)
	}
}

func TestIsPrefix(t *testing.T) {
	for s, want := range map[string]bool{
		"pa_live_AB7K2XYZ":  true,
		"pa_test_00000000":  true,
		"pa_live_AB7K2XY":   false,
		"pa_live_AB7K2XYZ0": false,
		"pa_prod_AB7K2XYZ":  false,
		"pa_live_AB7K-XYZ":  false,
		"":                  false,
		testKey("AB7K2XYZ"): false,
	} {
		if got := IsPrefix(s); got != want {
			t.Errorf("IsPrefix(%q) = %v, want %v", s, got, want)
		}
	}
}
