package githttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// maxStderr bounds the upload-pack stderr kept for the log.
const maxStderr = 16 << 10

// invocation describes one upload-pack run.
type invocation struct {
	dir         string
	advertise   bool         // --advertise-refs (info/refs)
	body        *requestBody // the request body (POST)
	proto       string       // GIT_PROTOCOL
	prefix      []byte       // written before upload-pack's output
	contentType string
}

// uploadPackArgs returns git's arguments, the same for the advertisement
// and the requests. The config keeps the advertisement to the repository
// layout (later hideRefs entries win, "!" un-hides) and fixes the options
// that matter whatever the repository's own config says:
//
//   - allowFilter: partial clones (--filter) on every protocol version.
//   - allowReachableSHA1InWant: a want may name any object reachable from
//     a ref, as partial clones need to fetch missing blobs and as
//     `git fetch <commit id>` needs on v0 and v1; an agent's repository
//     holds only that agent's refs, so this gives a reader nothing a full
//     clone would not. allowAnySHA1InWant is not set: on v0 and v1
//     objects reachable from no ref (say, from a write that never landed)
//     stay out of reach. (Protocol v2's upload-pack does not check wants
//     at all; that is git's behaviour, and again limited to the agent.)
func uploadPackArgs(advertise bool, dir string) []string {
	args := []string{
		"-c", "uploadpack.hideRefs=refs",
		"-c", "uploadpack.hideRefs=!refs/heads/draft",
		"-c", "uploadpack.hideRefs=!refs/heads/published",
		"-c", "uploadpack.hideRefs=!refs/tags",
		"-c", "uploadpack.allowFilter=true",
		"-c", "uploadpack.allowAnySHA1InWant=false",
		"-c", "uploadpack.allowTipSHA1InWant=false",
		"-c", "uploadpack.allowReachableSHA1InWant=true",
		"-c", "uploadpack.allowRefInWant=false",
		"-c", "core.hooksPath=" + os.DevNull,
		"upload-pack", "--stateless-rpc", "--strict",
	}
	if advertise {
		args = append(args, "--advertise-refs")
	}
	return append(args, dir)
}

// env is the whole environment of upload-pack: nothing of the daemon's
// own GIT_* variables, no system or global config.
func env(proto string) []string {
	e := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.DevNull,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
	}
	if t := os.Getenv("TMPDIR"); t != "" {
		e = append(e, "TMPDIR="+t)
	}
	if proto != "" {
		e = append(e, "GIT_PROTOCOL="+proto)
	}
	return e
}

// acquire takes one of Options.MaxProcesses slots, waiting at most
// Options.QueueWait. It reports whether it got one; if not, the request
// has been answered (503) or the client is gone.
func (h *Handler) acquire(w http.ResponseWriter, r *http.Request) bool {
	select {
	case h.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(h.o.QueueWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return true
	case <-t.C:
		h.fail(w, http.StatusServiceUnavailable, codeUnavailable)
	case <-r.Context().Done():
	}
	return false
}

// release frees a slot taken by acquire.
func (h *Handler) release() { <-h.slots }

// run executes upload-pack in one of the process slots and streams its
// output. The request body, if any, streams to upload-pack's stdin from a
// goroutine. The status is decided by the first bytes: if upload-pack
// exits without writing anything, the answer is the body's error if it
// had one (413, 408, 400), else 400 for a request (bad input) or 500 for
// an advertisement; otherwise 200 and the output is copied as it comes,
// flushing each chunk. The process dies with the request (client gone) or
// at Options.Timeout.
func (h *Handler) run(w http.ResponseWriter, r *http.Request, ru invocation) {
	if !h.acquire(w, r) {
		return
	}
	// The slot is freed when upload-pack has exited, not when a
	// trickling client's body is done.
	release := sync.OnceFunc(h.release)
	defer release()
	ctx, cancel := context.WithTimeout(r.Context(), h.o.Timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, h.o.GitPath, uploadPackArgs(ru.advertise, ru.dir)...)
	cmd.Dir = ru.dir
	cmd.Env = env(ru.proto)
	stderr := &capped{max: maxStderr}
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	killGroup(cmd)
	var stdin io.WriteCloser
	var err error
	if ru.body != nil {
		if stdin, err = cmd.StdinPipe(); err != nil {
			h.log("upload-pack pipe", err)
			h.fail(w, http.StatusInternalServerError, codeInternal)
			return
		}
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		h.log("upload-pack pipe", err)
		h.fail(w, http.StatusInternalServerError, codeInternal)
		return
	}
	if err := cmd.Start(); err != nil {
		if r.Context().Err() != nil {
			return // the client is gone
		}
		h.log("upload-pack start", err)
		h.fail(w, http.StatusInternalServerError, codeInternal)
		return
	}
	// bodyErr waits for the body copy, which reads the body to its end,
	// the limit or the deadline, and returns the body's own error, if any
	// (nil without a body).
	bodyErr := func() error { return nil }
	if ru.body != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			feed(stdin, ru.body)
			if ru.body.failed() != nil {
				cancel() // a request cut short: no use letting git chew on it
			}
			_ = stdin.Close()
			ru.body.drain()
		}()
		bodyErr = func() error {
			<-done
			return ru.body.failed()
		}
	}

	buf := make([]byte, 32<<10)
	n, rerr := readSome(stdout, buf)
	if n == 0 {
		werr := cmd.Wait()
		release()
		berr := bodyErr()
		switch {
		case berr != nil:
			// Before the context: a body read error cancels it too.
			ru.body.closeIfUnread(w)
			h.failBody(w, berr)
		case r.Context().Err() != nil:
			// The client is gone; nobody reads an answer.
		case werr == nil && rerr == io.EOF:
			// Nothing to say, and upload-pack is content: an empty 200.
			writeHeaders(w, ru.contentType)
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(ru.prefix)
		case ctx.Err() != nil:
			h.log("upload-pack timed out", waitErr(werr, stderr))
			h.fail(w, http.StatusServiceUnavailable, codeUnavailable)
		case ru.advertise:
			h.log("upload-pack advertise "+ru.dir, waitErr(werr, stderr))
			h.fail(w, http.StatusInternalServerError, codeInternal)
		default:
			h.log("upload-pack refused request", waitErr(werr, stderr))
			h.fail(w, http.StatusBadRequest, codeInvalidRequest)
		}
		return
	}

	writeHeaders(w, ru.contentType)
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	werr := write(w, rc, ru.prefix)
	for werr == nil {
		if werr = write(w, rc, buf[:n]); werr != nil {
			break
		}
		n, rerr = readSome(stdout, buf)
		if n == 0 {
			break
		}
	}
	if werr != nil {
		// The client stopped reading: kill upload-pack rather than let it
		// block on a full pipe.
		cancel()
	}
	err = cmd.Wait()
	release()
	berr := bodyErr()
	switch {
	case r.Context().Err() != nil:
	case berr != nil:
		// Answered in part, then the rest of the body failed: the
		// client gets a cut stream.
		h.log("upload-pack request body", berr)
	case err != nil:
		h.log("upload-pack "+ru.dir, waitErr(err, stderr))
	case rerr != nil && rerr != io.EOF && werr == nil:
		h.log("upload-pack read", rerr)
	}
}

// feed copies the body to upload-pack's stdin.
func feed(stdin io.Writer, b *requestBody) {
	if _, err := stdin.Write(b.pre); err != nil || b.ended() {
		return
	}
	buf := make([]byte, 32<<10)
	_, _ = io.CopyBuffer(stdin, onlyReader{b}, buf)
}

// onlyReader hides a reader's other methods from io.Copy.
type onlyReader struct{ io.Reader }

// readSome reads into buf until it gets at least one byte or an error.
func readSome(r io.Reader, buf []byte) (int, error) {
	for {
		n, err := r.Read(buf)
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// write writes b, if any, and flushes it to the client.
func write(w io.Writer, rc *http.ResponseController, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// writeHeaders sets the headers of a smart protocol answer: never cached.
func writeHeaders(w http.ResponseWriter, contentType string) {
	hd := w.Header()
	hd.Set("Content-Type", contentType)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("Pragma", "no-cache")
	hd.Set("Expires", "Fri, 01 Jan 1980 00:00:00 GMT")
}

// waitErr joins a process error with what it wrote on stderr.
func waitErr(err error, stderr *capped) error {
	if err == nil {
		err = errors.New("no output")
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		return fmt.Errorf("%w: %s", err, s)
	}
	return err
}

// capped is a goroutine-safe buffer keeping the first max bytes written.
type capped struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

// Write keeps what fits and reports everything written, so the writer
// never blocks or fails.
func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// String returns what was kept.
func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
