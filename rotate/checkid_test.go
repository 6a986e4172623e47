package rotate

import (
	"strings"
	"testing"
)

func TestCheckID(t *testing.T) {
	for id, ok := range map[string]bool{
		"key_01JE5WR133XEX2VXN8J46C0QA5": true,
		strings.Repeat("a", 128):         true,
		strings.Repeat("a", 129):         false,
		"":                               false,
		"../key":                         false,
		"key 1":                          false,
		"key\n":                          false,
	} {
		if err := checkID(id); (err == nil) != ok {
			t.Errorf("checkID(%q) = %v, want ok %v", id, err, ok)
		}
	}
}
