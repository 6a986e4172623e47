package duration

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "36h", want: 36 * time.Hour},
		{in: " 2d ", want: 48 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "-1d", want: -24 * time.Hour},
		{in: "0", want: 0},
		{in: "106751d23h47m16.854775807s", want: time.Duration(1<<63 - 1)},
		{in: "", wantErr: "empty duration"},
		{in: "5x", wantErr: `invalid duration "5x"`},
		{in: "1d-2h", wantErr: "invalid duration"},
		{in: "1d2d", wantErr: "invalid duration"},
		{in: "1.5d", wantErr: "invalid duration"},
		{in: "106752d", wantErr: "too many days"},
		{in: "99999999999999999999d", wantErr: "too many days"},
		{in: "106751d23h47m16.854775808s", wantErr: "too long"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// FuzzParse checks Parse against Go's own parser where there are no days,
// and that whatever it accepts, Format prints back to the same duration.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"36h", "2d", "1d12h", "-1d", "1d0.5s", "1.5h", "-3m", "5x", "1d-2h", "106751d23h47m16s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if !strings.Contains(s, "d") {
			want, werr := time.ParseDuration(strings.TrimSpace(s))
			if (err == nil) != (werr == nil) || d != want {
				t.Fatalf("Parse(%q) = %v, %v; time.ParseDuration says %v, %v", s, d, err, want, werr)
			}
		}
		if err != nil {
			return
		}
		back, err := Parse(Format(d))
		if err != nil || back != d {
			t.Fatalf("Format(%v) = %q reads back as %v, %v", d, Format(d), back, err)
		}
	})
}

func TestJSON(t *testing.T) {
	b, err := json.Marshal(struct {
		Q JSON `json:"quiet_period"`
	}{JSON(48 * time.Hour)})
	if err != nil || string(b) != `{"quiet_period":"2d"}` {
		t.Fatalf("marshal: %s %v", b, err)
	}
	for in, want := range map[string]time.Duration{`"2d"`: 48 * time.Hour, `"90m"`: 90 * time.Minute, `3600000000000`: time.Hour} {
		var d JSON
		if err := json.Unmarshal([]byte(in), &d); err != nil || time.Duration(d) != want {
			t.Errorf("unmarshal %s: %v %v", in, time.Duration(d), err)
		}
	}
	var d JSON
	if err := json.Unmarshal([]byte(`"soon"`), &d); err == nil {
		t.Error("a bad duration string was accepted")
	}
}

func TestApprox(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{1500 * time.Millisecond, "2s"},
		{59*time.Minute + 29*time.Second, "59m29s"},
		{2*time.Hour + 30*time.Second, "2h1m0s"},
		{36 * time.Hour, "36h0m0s"},
		{48 * time.Hour, "2d"},
		{7 * 24 * time.Hour, "7d"},
		{49 * time.Hour, "49h0m0s"},
	} {
		if got := Approx(tt.d); got != tt.want {
			t.Errorf("Approx(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}
