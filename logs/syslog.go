package logs

import (
	"log/syslog"
	"strings"

	"go.uber.org/zap/zapcore"
)

// syslogCore sends the error log to syslog too (log_syslog): the same
// words without the time stamp (syslog adds its own), at the priority of
// the line's level.
type syslogCore struct {
	zapcore.LevelEnabler
	enc zapcore.Encoder
	w   *syslog.Writer
}

// newSyslogCore connects to the system's syslog (addr "": /dev/log; a
// path: a Unix datagram socket there).
func newSyslogCore(addr string, level zapcore.LevelEnabler) (zapcore.Core, error) {
	var w *syslog.Writer
	var err error
	if addr == "" {
		w, err = syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "fsigkd")
	} else {
		w, err = syslog.Dial("unixgram", addr, syslog.LOG_DAEMON|syslog.LOG_INFO, "fsigkd")
	}
	if err != nil {
		return nil, err
	}
	return &syslogCore{LevelEnabler: level, enc: zapcore.NewConsoleEncoder(lineConfig(false)), w: w}, nil
}

func (c *syslogCore) With(fields []zapcore.Field) zapcore.Core {
	enc := c.enc.Clone()
	for _, f := range fields {
		f.AddTo(enc)
	}
	return &syslogCore{LevelEnabler: c.LevelEnabler, enc: enc, w: c.w}
}

func (c *syslogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *syslogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	buf, err := c.enc.EncodeEntry(e, fields)
	if err != nil {
		return err
	}
	line := strings.TrimSuffix(buf.String(), "\n")
	buf.Free()
	switch {
	case e.Level >= zapcore.ErrorLevel:
		return c.w.Crit(line)
	case e.Level == zapcore.WarnLevel:
		return c.w.Warning(line)
	case e.Level == zapcore.InfoLevel:
		return c.w.Info(line)
	}
	return c.w.Debug(line)
}

func (c *syslogCore) Sync() error { return nil }
