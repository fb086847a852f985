package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/docker/docker/daemon/logger/jsonfilelog/jsonlog"

	"github.com/berthrt/berth/logs/jsonfile"
)

// pollInterval is how often a follower looks for new entries and for a
// rotation: a stat and a read of a few log files, for the ones `logs -f`
// runs on.
const pollInterval = 100 * time.Millisecond

// readBufSize is the size of one read of a log file.
const readBufSize = 32 << 10

// Read writes the entries of the log that opts select to stdout and
// stderr (by the stream each was printed on), oldest first, and with
// opts.Follow goes on with what is appended.
func Read(ctx context.Context, cfg jsonfile.Config, opts Options, stdout, stderr io.Writer) error {
	r := &reader{opts: opts, stdout: stdout, stderr: stderr, buf: make([]byte, readBufSize)}
	files, err := openFiles(cfg)
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	starts, err := tailStarts(files, opts.Tail)
	if err != nil {
		return fmt.Errorf("read log %s: %w", cfg.Path, err)
	}
	for i, f := range files {
		if f == nil {
			continue
		}
		last := i == len(files)-1
		if _, err := f.Seek(starts[i], io.SeekStart); err != nil {
			return fmt.Errorf("read log %s: %w", f.Name(), err)
		}
		r.pending, r.pos = r.pending[:0], starts[i]
		if err := r.readAll(f); err != nil {
			return err
		}
		if r.stop {
			return nil
		}
		if last && opts.Follow {
			files[i] = nil // the follower owns it now
			return r.follow(ctx, cfg.Path, f)
		}
	}
	if opts.Follow {
		// No current file yet: follow it from its start once it comes.
		return r.follow(ctx, cfg.Path, nil)
	}
	return nil
}

// openFiles opens the log's files, oldest first; a missing one is nil.
func openFiles(cfg jsonfile.Config) ([]*os.File, error) {
	paths := cfg.Files()
	files := make([]*os.File, len(paths))
	for i, p := range paths {
		f, err := os.Open(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			for _, f := range files {
				if f != nil {
					f.Close()
				}
			}
			return nil, fmt.Errorf("open log %s: %w", p, err)
		}
		files[i] = f
	}
	return files, nil
}

// tailStarts is, for each file (oldest first), the offset at which
// reading starts: 0 for all, the start of the last n entries over all
// files for a tail of n (an older file left out starts at its end).
func tailStarts(files []*os.File, n int) ([]int64, error) {
	starts := make([]int64, len(files))
	need := n
	for i := len(files) - 1; i >= 0; i-- {
		f := files[i]
		if f == nil || n < 0 {
			continue
		}
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if need == 0 {
			starts[i] = fi.Size()
			continue
		}
		off, found, err := tailStart(f, fi.Size(), need)
		if err != nil {
			return nil, err
		}
		starts[i], need = off, need-found
	}
	return starts, nil
}

// tailStart finds where the last n lines of f (size bytes) begin, and how
// many lines it found there (fewer than n in a short file, then from 0).
// It reads backwards from the end, so a long log costs only its tail.
func tailStart(f *os.File, size int64, n int) (int64, int, error) {
	buf := make([]byte, readBufSize)
	newlines := 0
	for end := size; end > 0; {
		start := max(end-int64(len(buf)), 0)
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil && err != io.EOF {
			return 0, 0, fmt.Errorf("tail %s: %w", f.Name(), err)
		}
		for i := len(chunk) - 1; i >= 0; i-- {
			if chunk[i] != '\n' {
				continue
			}
			// The file's own last byte ends the last line; the line
			// before the n-th from the end ends at the (n+1)-th.
			newlines++
			if newlines == n+1 {
				return start + int64(i) + 1, n, nil
			}
		}
		end = start
	}
	return 0, newlines, nil
}

// reader decodes entries and writes the ones selected.
type reader struct {
	opts           Options
	stdout, stderr io.Writer
	buf            []byte
	// pending is the start of an entry whose end is not in the file yet.
	pending []byte
	// pos is the offset in the current file up to which it was read.
	pos   int64
	entry jsonlog.JSONLog
	ts    []byte
	// stop is set once an entry after opts.Until was met.
	stop bool
}

// readAll reads f from its offset to its end, writing every whole entry.
func (r *reader) readAll(f *os.File) error {
	for !r.stop {
		n, err := f.Read(r.buf)
		r.pos += int64(n)
		if n > 0 {
			if werr := r.lines(r.buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF || (err == nil && n == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read log %s: %w", f.Name(), err)
		}
	}
	return nil
}

// lines writes the entries that p (after pending) completes and keeps
// the rest in pending.
func (r *reader) lines(p []byte) error {
	for len(p) > 0 && !r.stop {
		q := bytes.IndexByte(p, '\n')
		if q < 0 {
			r.pending = append(r.pending, p...)
			return nil
		}
		line := p[:q]
		if len(r.pending) > 0 {
			r.pending = append(r.pending, line...)
			line = r.pending
		}
		if err := r.write(line); err != nil {
			return err
		}
		r.pending = r.pending[:0]
		p = p[q+1:]
	}
	return nil
}

// write decodes one entry and writes it, if selected, to its stream.
func (r *reader) write(line []byte) error {
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	r.entry.Reset()
	if err := json.Unmarshal(line, &r.entry); err != nil {
		return fmt.Errorf("decode log entry %.80q: %w", line, err)
	}
	at := r.entry.Created
	if !r.opts.Since.IsZero() && at.Before(r.opts.Since) {
		return nil
	}
	if !r.opts.Until.IsZero() && at.After(r.opts.Until) {
		r.stop = true
		return nil
	}
	w := r.stdout
	if r.entry.Stream == "stderr" {
		w = r.stderr
	}
	if r.opts.Timestamps {
		r.ts = append(at.UTC().AppendFormat(r.ts[:0], TimestampFormat), ' ')
		if _, err := w.Write(r.ts); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, r.entry.Log)
	return err
}

// follow reads what is appended to the log at path, f being the file
// read so far (nil: none yet), and follows it when it is rotated
// (renamed away, or truncated in place). It returns once opts.Ended is
// closed and the log has been read to its end, once opts.Until has
// passed, or when ctx ends.
func (r *reader) follow(ctx context.Context, path string, f *os.File) error {
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		// Taken before the read: what was logged before the end was
		// signalled is all read.
		ended := isClosed(r.opts.Ended)
		var changed bool
		var err error
		if f, changed, err = r.catchUp(path, f); err != nil {
			return err
		}
		if r.stop || (!r.opts.Until.IsZero() && time.Now().After(r.opts.Until)) {
			return nil
		}
		if changed {
			continue // a new file: read it at once
		}
		if ended {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.opts.Ended:
		case <-ticker.C:
		}
	}
}

// catchUp reads f to its end, then looks at path: a different file there
// (rotated) or a shorter one (truncated by a rotation that keeps one file)
// is opened, or rewound, to be read from its start; changed says so.
func (r *reader) catchUp(path string, f *os.File) (_ *os.File, changed bool, err error) {
	if f != nil {
		if err := r.readAll(f); err != nil {
			return f, false, err
		}
	}
	cur, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, false, nil // between a rename and the new file, or none yet
	}
	if err != nil {
		return f, false, fmt.Errorf("follow log %s: %w", path, err)
	}
	if f != nil {
		fi, err := f.Stat()
		if err != nil {
			return f, false, fmt.Errorf("follow log %s: %w", path, err)
		}
		if os.SameFile(fi, cur) {
			if fi.Size() >= r.pos {
				return f, false, nil
			}
			// Truncated: the writer rotated a log of one file.
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return f, false, fmt.Errorf("follow log %s: %w", path, err)
			}
			r.pos, r.pending = 0, r.pending[:0]
			return f, true, nil
		}
		f.Close()
	}
	nf, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("follow log %s: %w", path, err)
	}
	r.pos, r.pending = 0, r.pending[:0]
	return nf, true, nil
}

func isClosed(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
