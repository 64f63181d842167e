package bug

import (
	"strings"
	"sync"
)

// Collector is a Handler's store for a harness that lets the kernel run on
// after a report and decides afterwards which reports are bugs (the
// hand-over fuzzers: a corrupt hand-over may rightly make KHO WARN).
type Collector struct {
	mu   sync.Mutex
	reps []*Report // guarded by mu
}

// File is the Handler: it keeps r.
func (c *Collector) File(r *Report) {
	c.mu.Lock()
	c.reps = append(c.reps, r)
	c.mu.Unlock()
}

// Reports returns the reports kept so far.
func (c *Collector) Reports() []*Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Report(nil), c.reps...)
}

// Reset forgets every report kept so far.
func (c *Collector) Reset() {
	c.mu.Lock()
	c.reps = nil
	c.mu.Unlock()
}

// Unexpected returns the reports that are bugs: all but the WARNs whose
// title starts with one of expectedWarns.
func (c *Collector) Unexpected(expectedWarns ...string) []*Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Report
next:
	for _, r := range c.reps {
		if r.Kind == KindWarn {
			for _, p := range expectedWarns {
				if strings.HasPrefix(r.Title, p) {
					continue next
				}
			}
		}
		out = append(out, r)
	}
	return out
}
