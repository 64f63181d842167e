package main

import (
	"fmt"
	"strings"
	"sync"
)

// failNow unwinds a check after FailNow, as runtime.Goexit does for a test.
type failNow struct{}

// campaignTB is the rapid.TB a campaign runs under: it records what rapid
// reports instead of failing a *testing.T. sync.Mutex: rapid may call it
// from several goroutines; no kernel task waits on it.
type campaignTB struct {
	mu     sync.Mutex
	name   string
	failed bool     // guarded by mu
	errors []string // guarded by mu
	logs   []string // guarded by mu
}

func (c *campaignTB) Helper()      {}
func (c *campaignTB) Name() string { return c.name }

func (c *campaignTB) Logf(format string, args ...any) { c.Log(fmt.Sprintf(format, args...)) }

func (c *campaignTB) Log(args ...any) {
	s := strings.TrimSuffix(fmt.Sprintln(args...), "\n")
	c.mu.Lock()
	c.logs = append(c.logs, s)
	c.mu.Unlock()
}

func (c *campaignTB) Skipf(format string, args ...any) { c.Skip(fmt.Sprintf(format, args...)) }
func (c *campaignTB) Skip(args ...any)                 { c.Log(args...); c.SkipNow() }
func (c *campaignTB) SkipNow()                         { panic(failNow{}) }

func (c *campaignTB) Errorf(format string, args ...any) { c.Error(fmt.Sprintf(format, args...)) }

func (c *campaignTB) Error(args ...any) {
	s := strings.TrimSuffix(fmt.Sprintln(args...), "\n")
	c.mu.Lock()
	c.failed = true
	c.errors = append(c.errors, s)
	c.mu.Unlock()
}

func (c *campaignTB) Fatalf(format string, args ...any) { c.Errorf(format, args...); c.FailNow() }
func (c *campaignTB) Fatal(args ...any)                 { c.Error(args...); c.FailNow() }
func (c *campaignTB) FailNow()                          { c.Fail(); panic(failNow{}) }

func (c *campaignTB) Fail() {
	c.mu.Lock()
	c.failed = true
	c.mu.Unlock()
}

func (c *campaignTB) Failed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}
