package liveupdate

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpsCalledOnlyThroughTheSeam: every call LUO makes into a handler's
// or an FLB's ops goes through luo_callback.go, so that the callback
// recorder sees it (a call site that bypasses it would be invisible to the
// lockstep checker's trace comparison for every handler that does not
// record its own callbacks, memfd's among them).
func TestOpsCalledOnlyThroughTheSeam(t *testing.T) {
	ops := map[string]bool{}
	for _, n := range []string{"CanPreserve", "Preserve", "Unpreserve", "Freeze", "Unfreeze", "Retrieve", "CanFinish", "Finish", "GetID"} {
		ops[n] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || name == "luo_callback.go" {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !ops[sel.Sel.Name] {
				return true
			}
			if x, ok := sel.X.(*ast.SelectorExpr); ok && x.Sel.Name == "Ops" {
				t.Errorf("%s: calls .Ops.%s directly; call it through luo_callback.go so that the callback recorder sees it",
					fset.Position(call.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
	if checked < 10 {
		t.Fatalf("checked only %d files", checked)
	}
}
