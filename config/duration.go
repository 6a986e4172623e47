package config

import (
	"time"

	"github.com/plana-cli/plana/internal/duration"
)

const day = 24 * time.Hour

// ParseDuration reads a setting or flag value: Go syntax plus days.
func ParseDuration(s string) (time.Duration, error) { return duration.Parse(s) }

// FormatDuration prints d so that ParseDuration reads it back exactly.
func FormatDuration(d time.Duration) string { return duration.Format(d) }
