package bug

import (
	"reflect"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// traceBoth captures the stack of its caller both ways.
//
//go:noinline
func traceBoth(skip, depth int) (trace, stack string) {
	var t Trace
	t.Capture(skip+1, depth)
	return t.String(), CaptureStack(skip+1, depth).String()
}

type traceRecv struct{ skip, depth int }

//go:noinline
func (r traceRecv) value() (string, string) { return traceBoth(r.skip, r.depth) }

//go:noinline
func (r *traceRecv) ptr() (string, string) { return traceBoth(r.skip, r.depth) }

type tracer interface{ value() (string, string) }

type traceOuter struct{ *traceRecv }

// inlined is small enough to be inlined into its callers.
func inlined(skip, depth int) (string, string) { return traceBoth(skip, depth) }

//go:noinline
func recurse(n, skip, depth int) (string, string) {
	if n == 0 {
		return inlined(skip, depth)
	}
	return recurse(n-1, skip, depth)
}

// A Trace renders as CaptureStack's runtime.Callers stack of the same skip
// and depth: through inlined calls, wrappers of every kind (value and
// promoted methods through interfaces, method values, go and defer
// statements), short stacks and stacks cut by depth.
func TestTraceMatchesCaptureStack(t *testing.T) {
	for _, skip := range []int{0, 1, 2} {
		for _, depth := range []int{1, 3, 10, 16} {
			check := func(name string, f func() (string, string)) {
				got, want := f()
				require.Equal(t, want, got, "%s skip %d depth %d", name, skip, depth)
				require.NotEmpty(t, got)
			}
			r := &traceRecv{skip, depth}
			check("direct", func() (string, string) { return traceBoth(skip, depth) })
			check("inlined", func() (string, string) { return inlined(skip, depth) })
			check("deep", func() (string, string) { return recurse(20, skip, depth) })
			check("value method via interface", func() (string, string) { return tracer(r).value() })
			check("pointer to value method via interface", func() (string, string) { return tracer(*r).value() })
			check("promoted via interface", func() (string, string) { return tracer(traceOuter{r}).value() })
			check("method value", func() (string, string) { f := r.ptr; return f() })
			check("value method value", func() (string, string) { f := r.value; return f() })
			check("method value passed", func() (string, string) { return callIt(r.ptr) })
			check("go statement", func() (a, b string) {
				var wg sync.WaitGroup
				wg.Add(1)
				go func(r *traceRecv) { defer wg.Done(); a, b = r.ptr() }(r)
				wg.Wait()
				return
			})
			check("reflect call", func() (string, string) {
				out := reflect.ValueOf(r.ptr).Call(nil)
				return out[0].String(), out[1].String()
			})
			check("reflect.MakeFunc", func() (string, string) {
				var f func() (string, string)
				fv := reflect.MakeFunc(reflect.TypeOf(f), func([]reflect.Value) []reflect.Value {
					a, b := traceBoth(skip, depth)
					return []reflect.Value{reflect.ValueOf(a), reflect.ValueOf(b)}
				})
				reflect.ValueOf(&f).Elem().Set(fv)
				return f()
			})
			check("deferred in a loop", func() (a, b string) {
				for i := range 2 {
					defer func() {
						if i == 0 {
							a, b = r.ptr()
						}
					}()
				}
				return
			})
			check("go method", func() (a, b string) {
				var wg sync.WaitGroup
				wg.Add(1)
				go deferred(r, &a, &b, &wg)
				wg.Wait()
				return
			})
		}
	}
}

//go:noinline
func deferred(r *traceRecv, a, b *string, wg *sync.WaitGroup) {
	defer wg.Done()
	defer func() { *a, *b = r.ptr() }()
}

//go:noinline
func callIt(f func() (string, string)) (string, string) { return f() }
