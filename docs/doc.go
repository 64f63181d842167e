// Package docs holds the project's generated documentation. xref.md maps
// every function of the ported C files to its Go counterpart and to the
// tests that exercise it; xref_test.go generates it and fails when it is
// stale.
//
// Regenerate with `make xref` (or `go generate ./docs`).
package docs

//go:generate env XREF_UPDATE=1 go test -count=1 -run ^TestXref$ .
