package http

import (
	"archive/zip"
	"io"
)

func zipWriter(w io.Writer) *zip.Writer { return zip.NewWriter(w) }
