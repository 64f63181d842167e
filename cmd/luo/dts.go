package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"syscall"

	"luomodel/kernel/lib/fdt"
	"luomodel/kernel/liveupdate"
	"luomodel/kernel/mm"
	"luomodel/machine"
	"luomodel/model"
)

func errnoName(e syscall.Errno) string { return model.ErrnoName(e) }

// readFDT reads the flattened device tree at pa from RAM.
func readFDT(ram *mm.RAM, pa mm.PhysAddr) (*fdt.FDT, error) {
	var hdr [8]byte
	if err := ram.ReadRaw(pa, hdr[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(hdr[4:])
	if size < 40 || size > 1<<20 {
		return nil, fmt.Errorf("FDT at %#x: totalsize %d", uint64(pa), size)
	}
	blob := make([]byte, size)
	if err := ram.ReadRaw(pa, blob); err != nil {
		return nil, err
	}
	return fdt.Open(blob)
}

// printHandover prints KHO's root FDT and every sub-FDT it names, in DTS
// form, with LUO's serialized sessions decoded as comments.
func printHandover(w io.Writer, m *machine.Machine) error {
	f, err := readFDT(m.RAM(), m.LastHandover())
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "/dts-v1/;")
	return printNode(w, m.RAM(), f, 0, 0)
}

func printNode(w io.Writer, ram *mm.RAM, f *fdt.FDT, off, depth int) error {
	ind := strings.Repeat("\t", depth)
	name, err := f.GetName(off)
	if err != nil {
		return err
	}
	if off == 0 && name == "" {
		name = "/" // the root of this blob, also when nested as a sub-FDT
	}
	fmt.Fprintf(w, "%s%s {\n", ind, name)
	var subFDTs []mm.PhysAddr
	for p, err := f.FirstProperty(off); err == nil; p, err = f.NextProperty(p) {
		pname, val, err := f.GetPropertyByOffset(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\t%s = %s;", ind, pname, propValue(val))
		if len(val) == 8 {
			pa := mm.PhysAddr(binary.LittleEndian.Uint64(val))
			fmt.Fprintf(w, " /* %#x */", uint64(pa))
			switch pname {
			case "fdt":
				subFDTs = append(subFDTs, pa)
			case "luo-session-header":
				fmt.Fprintln(w)
				printSessions(w, ram, pa, ind+"\t")
				continue
			}
		}
		fmt.Fprintln(w)
	}
	for _, pa := range subFDTs {
		sub, err := readFDT(ram, pa)
		if err != nil {
			fmt.Fprintf(w, "%s\t/* sub-FDT: %v */\n", ind, err)
			continue
		}
		fmt.Fprintf(w, "%s\t/* sub-FDT at %#x: */\n", ind, uint64(pa))
		if err := printNode(w, ram, sub, 0, depth+1); err != nil {
			return err
		}
	}
	for c, err := f.FirstSubnode(off); err == nil; c, err = f.NextSubnode(c) {
		if err := printNode(w, ram, f, c, depth+1); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "%s};\n", ind)
	return nil
}

// printSessions decodes LUO's serialized session block as DTS comments.
func printSessions(w io.Writer, ram *mm.RAM, pa mm.PhysAddr, ind string) {
	var hb [liveupdate.SessionHeaderSerSize]byte
	if err := ram.ReadRaw(pa, hb[:]); err != nil {
		fmt.Fprintf(w, "%s/* session header: %v */\n", ind, err)
		return
	}
	h := liveupdate.DecodeSessionHeaderSer(hb[:])
	fmt.Fprintf(w, "%s/* luo_session_header_ser: count = %d */\n", ind, h.Count)
	for i := 0; i < int(min(h.Count, 16)); i++ {
		var sb [liveupdate.SessionSerSize]byte
		spa := pa + mm.PhysAddr(liveupdate.SessionHeaderSerSize+i*liveupdate.SessionSerSize)
		if err := ram.ReadRaw(spa, sb[:]); err != nil {
			return
		}
		s := liveupdate.DecodeSessionSer(sb[:])
		name, _, _ := strings.Cut(string(s.Name[:]), "\x00")
		fmt.Fprintf(w, "%s/*   [%d] luo_session_ser { name = %q; files = %#x; count = %d; } */\n",
			ind, i, name, s.FileSetSer.Files, s.FileSetSer.Count)
		for j := 0; j < int(min(s.FileSetSer.Count, 16)); j++ {
			var fb [liveupdate.FileSerSize]byte
			if err := ram.ReadRaw(mm.PhysAddr(s.FileSetSer.Files)+mm.PhysAddr(j*liveupdate.FileSerSize), fb[:]); err != nil {
				return
			}
			f := liveupdate.DecodeFileSer(fb[:])
			compat, _, _ := strings.Cut(string(f.Compatible[:]), "\x00")
			fmt.Fprintf(w, "%s/*     [%d] luo_file_ser { compatible = %q; data = %#x; token = %d; } */\n",
				ind, j, compat, f.Data, f.Token)
		}
	}
}

// propValue renders a property value the way dtc would.
func propValue(v []byte) string {
	if len(v) == 0 {
		return "<>"
	}
	if v[len(v)-1] == 0 && printable(v[:len(v)-1]) {
		parts := strings.Split(string(v[:len(v)-1]), "\x00")
		return `"` + strings.Join(parts, `", "`) + `"`
	}
	if len(v)%4 == 0 {
		var cells []string
		for i := 0; i < len(v); i += 4 {
			cells = append(cells, fmt.Sprintf("0x%08x", binary.BigEndian.Uint32(v[i:])))
		}
		return "<" + strings.Join(cells, " ") + ">"
	}
	return fmt.Sprintf("[%x]", v)
}

func printable(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c != 0 && (c < 0x20 || c > 0x7e) {
			return false
		}
	}
	return b[0] != 0
}
