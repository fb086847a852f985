package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Logging follows runc's global flags: --log names the file (else
// stderr), --log-format is text or json, --debug adds the debug lines. The
// records look like runc's (logrus's): lowercase levels, RFC 3339 times,
// and in json the keys "level", "msg" and "time", which containerd's runc
// shim reads back (go-runc) to report a runtime's last error. libcontainer
// logs through log/slog's default logger, which setupLogging points here.

// logFormats are the values --log-format takes.
var logFormats = []string{"text", "json"}

// setupLogging checks the logging flags and makes g.logger. Without
// --log, debug lines go to stderr, and errors only as report prints them.
func (g *globals) setupLogging() error {
	if !isLogFormat(g.logFormat) {
		return fmt.Errorf("--log-format %q is not a log format: use %s", g.logFormat, strings.Join(logFormats, " or "))
	}
	out := io.Writer(os.Stderr)
	if g.log != "" {
		f, err := os.OpenFile(g.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return fmt.Errorf("open the log file (--log): %w", err)
		}
		g.logFile, out = f, f
	}
	g.logger = newLogger(out, g.logFormat, g.debug)
	slog.SetDefault(g.logger)
	return nil
}

func isLogFormat(f string) bool {
	for _, ok := range logFormats {
		if f == ok {
			return true
		}
	}
	return false
}

// newLogger writes records in format at info level, or debug with debug.
func newLogger(out io.Writer, format string, debug bool) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: logrusStyle}
	if debug {
		opts.Level = slog.LevelDebug
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}

// logrusStyle writes the level and time as runc does.
func logrusStyle(groups []string, a slog.Attr) slog.Attr {
	if len(groups) > 0 {
		return a
	}
	switch a.Key {
	case slog.LevelKey:
		level, _ := a.Value.Any().(slog.Level)
		switch {
		case level >= slog.LevelError:
			a.Value = slog.StringValue("error")
		case level >= slog.LevelWarn:
			a.Value = slog.StringValue("warning")
		case level >= slog.LevelInfo:
			a.Value = slog.StringValue("info")
		default:
			a.Value = slog.StringValue("debug")
		}
	case slog.TimeKey:
		a.Value = slog.StringValue(a.Value.Time().UTC().Format(time.RFC3339Nano))
	}
	return a
}

// closeLog closes the --log file, if one was opened.
func (g *globals) closeLog() {
	if g.logFile != nil {
		g.logFile.Close()
	}
}
