package jsonfile

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/docker/docker/daemon/logger/jsonfilelog/jsonlog"
	"golang.org/x/sys/unix"
)

// MaxLine is the longest piece of a line logged as one entry, docker's
// buffer size: a longer line is logged in pieces of this size without
// "\n" (partial entries), the rest when its newline comes.
const MaxLine = 16 << 10

// retainBuf is the most encoding buffer a Writer keeps between writes;
// a larger one (a burst of long lines) is dropped, so an idle shim does
// not hold it.
const retainBuf = 64 << 10

// keepPending is the most room a Stream keeps for unfinished lines once
// they are logged: a prompt fits, a long partial line's buffer goes.
const keepPending = 4 << 10

// Writer appends a container's log entries to its json-file log and
// rotates it. Its streams (one per output stream) may write at once:
// each Write of a stream lands whole.
type Writer struct {
	mu   sync.Mutex
	cfg  Config
	f    *os.File
	size int64
	buf  bytes.Buffer
	msg  jsonlog.JSONLogs
	now  func() time.Time
}

// Open opens (creating it, and its directory, if missing) the log for
// appending: a container that restarts goes on in the same log.
func Open(cfg Config) (*Writer, error) {
	if cfg.MaxFile < 1 {
		cfg.MaxFile = 1
	}
	// The log's directory is root's and not listable by others, as
	// docker's container directories are.
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o710); err != nil {
		return nil, fmt.Errorf("create the directory of log %s: %w", cfg.Path, err)
	}
	f, err := openLog(cfg.Path, os.O_APPEND)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open log %s: %w", cfg.Path, err)
	}
	return &Writer{cfg: cfg, f: f, size: fi.Size(), now: time.Now}, nil
}

// openLog opens the log file for writing, never through a symlink in
// its last component.
func openLog(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|unix.O_NOFOLLOW|flag, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", path, err)
	}
	return f, nil
}

// Stream returns the writer of one output stream ("stdout" or "stderr";
// a terminal's output is "stdout"). Only one goroutine may use it.
func (w *Writer) Stream(name string) *Stream { return &Stream{w: w, name: name} }

// Close closes the log file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// addLocked encodes one entry into the pending buffer, rotating first
// when the log has reached its size, as docker does: a file grows past
// max-size by at most one entry.
func (w *Writer) addLocked(stream string, line []byte, at time.Time) error {
	if w.cfg.MaxSize > 0 && w.size+int64(w.buf.Len()) >= w.cfg.MaxSize {
		if err := w.flushLocked(); err != nil {
			return err
		}
		if err := w.rotateLocked(); err != nil {
			return err
		}
	}
	w.msg.Log, w.msg.Stream, w.msg.Created = line, stream, at.UTC()
	err := w.msg.MarshalJSONBuf(&w.buf)
	w.msg.Log = nil
	if err != nil {
		return fmt.Errorf("encode log entry: %w", err)
	}
	w.buf.WriteByte('\n')
	return nil
}

// flushLocked writes the encoded entries to the file in one write.
func (w *Writer) flushLocked() error {
	if w.buf.Len() == 0 {
		return nil
	}
	defer func() {
		w.buf.Reset()
		if w.buf.Cap() > retainBuf {
			w.buf = bytes.Buffer{}
		}
	}()
	if w.f == nil {
		return fmt.Errorf("log %s: %w", w.cfg.Path, os.ErrClosed)
	}
	n, err := w.f.Write(w.buf.Bytes())
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("write log %s: %w", w.cfg.Path, err)
	}
	return nil
}

// rotateLocked shifts <path>.N-1 … <path>.1 up by one and <path> to
// <path>.1, dropping the oldest, and starts an empty <path> (docker's
// json-file rotation). With one file, the full one is removed, not
// truncated in place as docker's is: a follower still holding it reads
// it to its end, then finds the new file, instead of reading on from its
// old offset in a file that started over.
func (w *Writer) rotateLocked() error {
	path := w.cfg.Path
	if w.cfg.MaxFile > 1 {
		for i := w.cfg.MaxFile - 1; i > 1; i-- {
			if err := os.Rename(rotatedName(path, i-1), rotatedName(path, i)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("rotate log %s: %w", path, err)
			}
		}
		if err := os.Rename(path, rotatedName(path, 1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate log %s: %w", path, err)
		}
	} else if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rotate log %s: %w", path, err)
	}
	f, err := openLog(path, os.O_APPEND|os.O_TRUNC)
	if err != nil {
		return err
	}
	w.f.Close()
	w.f, w.size = f, 0
	return nil
}

// Stream turns one output stream into log entries: a line per entry,
// split as docker's log copier splits (see MaxLine). It keeps only the
// unfinished line between writes.
type Stream struct {
	w    *Writer
	name string
	// pending is the start of a line whose newline has not come yet.
	pending []byte
	// partialAt is the time of the first piece of a line logged in
	// pieces: docker gives all of them, and the end, that time.
	partialAt time.Time
}

// Write logs every line that p completes and keeps the rest. It always
// consumes all of p; the error is the log's (a full disk), for the
// caller to report.
func (s *Stream) Write(p []byte) (int, error) {
	n := len(p)
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	var err error
	for len(p) > 0 && err == nil {
		room := MaxLine - len(s.pending)
		q := bytes.IndexByte(p[:min(room, len(p))], '\n')
		switch {
		case q >= 0 && len(s.pending) == 0:
			// The common case: a whole line in p, logged from p itself.
			err = s.addLocked(p[:q+1], true)
		case q >= 0:
			s.pending = append(s.pending, p[:q+1]...)
			err = s.addLocked(s.pending, true)
		case len(p) < room:
			s.pending = append(s.pending, p...)
			q = len(p) - 1
		default:
			// MaxLine bytes without a newline: a partial entry.
			s.pending = append(s.pending, p[:room]...)
			err = s.addLocked(s.pending, false)
			q = room - 1
		}
		p = p[q+1:]
	}
	if ferr := w.flushLocked(); err == nil {
		err = ferr
	}
	return n, err
}

// Flush logs the unfinished line, as a partial entry: the stream ended.
func (s *Stream) Flush() error {
	if len(s.pending) == 0 {
		return nil
	}
	w := s.w
	w.mu.Lock()
	defer w.mu.Unlock()
	err := s.addLocked(s.pending, false)
	if ferr := w.flushLocked(); err == nil {
		err = ferr
	}
	return err
}

// addLocked logs line (complete: it ends in "\n") and resets pending.
func (s *Stream) addLocked(line []byte, complete bool) error {
	at := s.partialAt
	if at.IsZero() {
		at = s.w.now()
	}
	if complete {
		s.partialAt = time.Time{}
	} else if s.partialAt.IsZero() {
		s.partialAt = at
	}
	err := s.w.addLocked(s.name, line, at)
	s.pending = s.pending[:0]
	if cap(s.pending) > keepPending {
		s.pending = nil
	}
	return err
}
