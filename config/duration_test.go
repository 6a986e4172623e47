package config

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"36h", 36 * time.Hour, false},
		{"2d", 48 * time.Hour, false},
		{"365d", 365 * day, false},
		{"1d12h", 36 * time.Hour, false},
		{"1d1h30m", 25*time.Hour + 30*time.Minute, false},
		{"30s", 30 * time.Second, false},
		{"0s", 0, false},
		{" 2d ", 48 * time.Hour, false},
		{"", 0, true},
		{"d", 0, true},
		{"2", 0, true},
		{"2days", 0, true},
		{"1d2d", 0, true},
		{"1d-2h", 0, true},
		{"99999999999999d", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := map[time.Duration]string{
		365 * day:                      "365d",
		36 * time.Hour:                 "1d12h",
		30 * time.Second:               "30s",
		5 * time.Minute:                "5m",
		2 * time.Hour:                  "2h",
		day + 90*time.Second:           "1d1m30s",
		1500 * time.Millisecond:        "1.5s",
		0:                              "0s",
		day + time.Hour + 1:            "1d1h0m0.000000001s",
		-2 * time.Hour:                 "-2h",
		24*time.Hour - time.Nanosecond: "23h59m59.999999999s",
	}
	for d, want := range tests {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// FuzzParseDuration checks that anything accepted prints back to itself.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"36h", "2d", "365d", "1d12h", "1.5h", "1d0.5s", "-3m", "9223372036854775807ns", "106751d23h47m16s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		back, err := ParseDuration(FormatDuration(d))
		if err != nil {
			t.Fatalf("FormatDuration(%v) = %q does not parse: %v", d, FormatDuration(d), err)
		}
		if back != d {
			t.Fatalf("round trip of %q: %v became %v", s, d, back)
		}
	})
}
