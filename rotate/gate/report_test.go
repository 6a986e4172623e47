package gate

import (
	"strings"
	"testing"
	"time"

	"github.com/plana-cli/plana/internal/duration"
	"github.com/plana-cli/plana/rotate/ref"
)

func TestGateSummaryOfACutShortEvaluation(t *testing.T) {
	rep := Report{Old: ref.Key{Prefix: "pa_live_AB7K2XYZ"}, QuietPeriod: duration.JSON(time.Hour)}
	if s := rep.Summary(); strings.Contains(s, "ago") {
		t.Fatalf("a report without a last use tells of one: %q", s)
	}
}
