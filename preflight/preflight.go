// Package preflight holds the checks the master runs before it starts any
// service: the licence (M21), free space in the temporary directory (M09),
// and an on-access virus scanner eating files in it (M10). Each failure is
// an error carrying its documented message.
package preflight

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/fsigkd/fsigkd/catalog"
	"github.com/fsigkd/fsigkd/conf"
	"github.com/fsigkd/fsigkd/eicar"
	"github.com/fsigkd/fsigkd/spool"
)

// Failure is a failed check and the message it is logged with.
type Failure struct {
	Msg catalog.Message
	Err error
}

func (f *Failure) Error() string {
	if f.Err != nil {
		return f.Msg.Text + ": " + f.Err.Error()
	}
	return f.Msg.Text
}

// CatalogMessage is the documented message of the failure.
func (f *Failure) CatalogMessage() catalog.Message { return f.Msg }

// License fails with M21 when an evaluation key expired before now.
func License(key string, now time.Time) error {
	exp, err := conf.LicenseExpiry(key)
	if err != nil {
		return &Failure{Msg: catalog.M21(), Err: err}
	}
	if !exp.IsZero() && !now.Before(exp) {
		return &Failure{Msg: catalog.M21()}
	}
	return nil
}

// TempSpace fails with M09 when dir has less than min bytes free for this
// (unprivileged) user.
func TempSpace(dir string, min int64) error {
	free, err := spool.Dir{Path: dir}.Free()
	if err != nil {
		return &Failure{Msg: catalog.M09(dir, 0, -1), Err: err}
	}
	if free < min {
		return &Failure{Msg: catalog.M09(dir, free/1024, 0)}
	}
	return nil
}

// ProbeSettle is how long the EICAR probe rests before it is read back,
// so that a scanner that removes files after the fact has done so.
var ProbeSettle = 200 * time.Millisecond

// OnAccessScanner writes the EICAR test file into dir and reads it back:
// M10 when it cannot be opened again, vanished or changed, which is what
// an on-access scanner (fanotify-based, or one that quarantines files)
// does to it. Our own spool files would fare the same.
func OnAccessScanner(dir string) error {
	f, err := os.CreateTemp(dir, "fsigkd-probe-*")
	if err != nil {
		return err
	}
	name := f.Name()
	defer os.Remove(name)
	_, werr := io.WriteString(f, eicar.String)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return &Failure{Msg: catalog.M10(dir), Err: werr}
	}
	time.Sleep(ProbeSettle)
	g, err := os.Open(name)
	if err != nil {
		return &Failure{Msg: catalog.M10(dir), Err: err}
	}
	defer g.Close()
	got, err := io.ReadAll(io.LimitReader(g, int64(len(eicar.String))+1))
	if err != nil {
		return &Failure{Msg: catalog.M10(dir), Err: err}
	}
	if !bytes.Equal(got, []byte(eicar.String)) {
		return &Failure{Msg: catalog.M10(dir), Err: fmt.Errorf("read back %d bytes, not the %d written", len(got), len(eicar.String))}
	}
	return nil
}
