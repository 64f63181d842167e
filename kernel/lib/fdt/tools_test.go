package fdt

import (
	"os"
	"os/exec"
	"testing"
)

// requireTool returns the path of the external tool name (dtc, fdtdump). If
// it is not on PATH the test is skipped, unless LUOMODEL_REQUIRE_DTC=1 (as
// CI sets it), in which case the test fails.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("LUOMODEL_REQUIRE_DTC") == "1" {
		t.Fatalf("%s not found on PATH and LUOMODEL_REQUIRE_DTC=1: %v", name, err)
	}
	t.Skipf("%s not found on PATH (set LUOMODEL_REQUIRE_DTC=1 to make this fatal)", name)
	return ""
}
