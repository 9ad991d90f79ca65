package unpack

import (
	"bytes"
	"strings"
)

// Member is a member of a container as the container describes it, as
// ClamAV's container metadata signatures (.cdb) read it: every container
// ClamAV describes so, and its readings, are ClamAV's own (each names
// and counts its members its own way), so that such a signature finds
// the same members here as there.
type Member struct {
	// Container is the container's type, as ClamAV names it
	// (CL_TYPE_ZIP, CL_TYPE_POSIX_TAR...), and ContainerSize its size.
	Container     string
	ContainerSize int64
	Name          string
	Packed        int64 // its size in the container (0 where ClamAV gives none)
	Size          int64 // its size unpacked
	Encrypted     bool
	Pos           int // its place, as ClamAV counts it for this container
}

// MemberMatch is a scan's look at a member's description: found reports
// a detection of the container, and says whether to stop.
type MemberMatch func(m Member, found func(name string) (stop bool))

// Container types, as ClamAV names them, of the containers whose
// members are described.
const (
	TypeZip      = "CL_TYPE_ZIP"
	TypeTar      = "CL_TYPE_POSIX_TAR"
	TypeOldTar   = "CL_TYPE_OLD_TAR"
	TypeSevenZip = "CL_TYPE_7Z"
	TypeCab      = "CL_TYPE_MSCAB"
	TypeCpioOld  = "CL_TYPE_CPIO_OLD"
	TypeCpioODC  = "CL_TYPE_CPIO_ODC"
	TypeCpioNewc = "CL_TYPE_CPIO_NEWC"
	TypeCpioCRC  = "CL_TYPE_CPIO_CRC"
	TypeARJ      = "CL_TYPE_ARJ"
	TypeMail     = "CL_TYPE_MAIL"
	TypeISO      = "CL_TYPE_ISO9660"
	TypeRAR      = "CL_TYPE_RAR"
	TypeGzip     = "CL_TYPE_GZ"
	TypeBzip2    = "CL_TYPE_BZ"
	TypeXz       = "CL_TYPE_XZ"
	TypePDF      = "CL_TYPE_PDF"
	TypeOLE2     = "CL_TYPE_MSOLE2"
	TypeOneNote  = "CL_TYPE_ONENOTE"
	TypeCHM      = "CL_TYPE_MSCHM"
	TypeUDF      = "CL_TYPE_UDF"
	TypeXar      = "CL_TYPE_XAR"
)

// tarType is a tar's type: POSIX's ("ustar" in its first header) or the
// old one's.
func tarType(data []byte) string {
	if len(data) > 262 && bytes.HasPrefix(data[257:], []byte("ustar")) {
		return TypeTar
	}
	return TypeOldTar
}

// describe has the scan's MemberMatch look at m, a member of the
// container at where, whose members are at depth.
func (s *scan) describe(m Member, where string, depth int) {
	if s.opt.Members == nil || s.stop {
		return
	}
	// Each description is looked at by every container signature: an
	// archive of a million directory records, which are no files to
	// count, would have them looked at a million times. Past four times
	// the files a scan may open, the scan stops at the limit.
	if s.described++; s.described > 4*s.lim.MaxFiles {
		s.exceeded("Files", where, depth-1)
		return
	}
	s.opt.Members(m, func(name string) bool { return s.report(name, where, depth-1) })
}

// report adds the detection name found at where, by its kind; it says
// whether to stop.
func (s *scan) report(name, where string, depth int) bool {
	kind := Infected
	switch {
	case !s.opt.counts(name):
		return false
	case strings.HasPrefix(name, limitPrefix):
		kind = Suspected
	case strings.HasPrefix(name, puaPrefix):
		kind = Riskware
	}
	s.add(Detection{Name: name, Path: where, Kind: kind, Depth: depth})
	return s.opt.StopOnFirst
}
