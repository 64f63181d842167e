package concurrent

import (
	"testing"

	"pgregory.net/rapid"
)

// TestFirstDescentIsPorcupines runs checks with porcupine's whole search
// beside its first descent on every round: where the descent linearizes a
// history, porcupine must find it linearizable and end in the same state.
// Both kinds of history must occur: those the descent linearizes and those
// left to porcupine's whole search.
func TestFirstDescentIsPorcupines(t *testing.T) {
	var n descentCounts
	cfg := Config{crossCheck: &n, OutDir: t.TempDir()}
	rapid.Check(t, property(cfg, nil, nil, true))
	t.Logf("rounds: %d linearized by the first descent, %d searched", n.descended.Load(), n.searched.Load())
	if n.descended.Load() == 0 || n.searched.Load() == 0 {
		t.Fatalf("rounds: %d linearized by the first descent, %d searched: want both", n.descended.Load(), n.searched.Load())
	}
}
