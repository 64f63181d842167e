package concurrent

import "testing"

// TestTakesAreLUOLocks checks that every lock an instruction takes is one
// of luoLocks: the steering's tables (lockMeets) are indexed by
// lockIndex, which knows only those.
func TestTakesAreLUOLocks(t *testing.T) {
	for k := range numKinds {
		for _, class := range takes[k] {
			if _, ok := lockIndex()[class]; !ok {
				t.Errorf("%v takes %q, not one of luoLocks", k, class)
			}
		}
	}
}
