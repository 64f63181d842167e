package concurrent

import (
	"testing"

	"pgregory.net/rapid"
)

// TestFirstDescentIsPorcupines runs checks with porcupine's whole search
// beside the descents on every round: where a descent linearizes a
// history, porcupine must find it linearizable, and after the first
// descent end in the same state. Every kind of history must occur: those
// the first descent linearizes, those only the late descent does, and
// those left to porcupine's whole search.
func TestFirstDescentIsPorcupines(t *testing.T) {
	var n descentCounts
	cfg := Config{crossCheck: &n, OutDir: t.TempDir()}
	// About 1% of rounds reach the search: batches of checks until one
	// does (or 20 batches, a failure).
	for batch := 0; batch < 20 && (batch == 0 || n.searched.Load() == 0); batch++ {
		rapid.Check(t, property(cfg, nil, nil, true))
	}
	t.Logf("rounds: %d linearized by the first descent, %d by the late descent, %d searched", n.descended.Load(), n.late.Load(), n.searched.Load())
	if n.descended.Load() == 0 || n.late.Load() == 0 || n.searched.Load() == 0 {
		t.Fatalf("rounds: %d linearized by the first descent, %d by the late descent, %d searched: want each", n.descended.Load(), n.late.Load(), n.searched.Load())
	}
}
