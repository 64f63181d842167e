package proptest

import (
	"testing"

	"pgregory.net/rapid"
)

// TestLockstepWithFaults runs lockstep campaigns with the fault actions:
// the model predicts every faulted operation, and at the end every file
// is released and every preserved block accounted for.
func TestLockstepWithFaults(t *testing.T) {
	rapid.Check(t, LockstepWithFaults(nil))
}
