package kernel

import (
	"strings"
	"syscall"
)

// Cmdline is the parsed kernel command line: the early_param()s this port
// knows. Unknown words are ignored, as the kernel passes them to init.
type Cmdline struct {
	// LiveUpdate is early_param("liveupdate") (luo_global.enabled);
	// default false.
	LiveUpdate bool
	// KHO is early_param("kho") (kho_enable); default true, as with
	// CONFIG_KEXEC_HANDOVER_ENABLE_DEFAULT=y.
	KHO bool
}

// DefaultCmdline is the command line's value when no parameter is given.
func DefaultCmdline() Cmdline { return Cmdline{KHO: true} }

// ParseCmdline ports parse_early_param() for the parameters of Cmdline:
// words are separated by spaces; "name=value" sets name through
// kstrtobool(); a value kstrtobool() rejects leaves the default, as an
// early_param handler that returns an error does. The last occurrence
// wins.
func ParseCmdline(s string) Cmdline {
	c := DefaultCmdline()
	for _, word := range strings.Fields(s) {
		name, val, hasVal := strings.Cut(word, "=")
		if !hasVal {
			continue
		}
		var dst *bool
		switch name {
		case "liveupdate":
			dst = &c.LiveUpdate
		case "kho":
			dst = &c.KHO
		default:
			continue
		}
		if v, err := Kstrtobool(val); err == nil {
			*dst = v
		}
	}
	return c
}

// String renders c as command-line words.
func (c Cmdline) String() string {
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	return "liveupdate=" + onOff(c.LiveUpdate) + " kho=" + onOff(c.KHO)
}

// Kstrtobool ports lib/kstrtox.c:kstrtobool(): "y", "Y", "t", "T", "1",
// "on" are true; "n", "N", "f", "F", "0", "off" are false (only the first
// one or two characters are looked at); anything else is EINVAL.
func Kstrtobool(s string) (bool, error) {
	if s == "" {
		return false, syscall.EINVAL
	}
	switch s[0] {
	case 'y', 'Y', 't', 'T', '1':
		return true, nil
	case 'n', 'N', 'f', 'F', '0':
		return false, nil
	case 'o', 'O':
		if len(s) > 1 {
			switch s[1] {
			case 'n', 'N':
				return true, nil
			case 'f', 'F':
				return false, nil
			}
		}
	}
	return false, syscall.EINVAL
}
