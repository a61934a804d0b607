"""The replicas' gunicorn worker: gthread, except that no thread ever blocks on a request that is
still arriving, and gunicorn's own protocol errors are JSON.

gunicorn's gthread hands a connection to a thread as soon as its first byte arrives (and for up
to 5 s before that, in the thread); the thread then blocks reading the rest. Four clients that
send headers announcing 100 bytes and then only `{` held all four threads of a replica, which
answered nothing else (issue 11). Here a thread reads only what has arrived (one non-blocking
`recv`) and checks whether the request is whole: headers and the whole body, by Content-Length
or chunked framing. If it is, gunicorn's parser, unchanged, parses it from memory and the request
is served as before. If not, the connection goes back to gthread's event loop (its `_DEFER` path)
until more bytes arrive, so a slow or half-finished client costs a waiting connection, never a
thread. A request not whole within `BOTIFY_REQUEST_READ_TIMEOUT` seconds (10) of its first read
is answered 408 and closed; headers past 64 KiB are 431, a body past 256 KiB is 413 (the
service's own limits are far lower, see docs/service.md). Keep-alive, TCP_NODELAY, the thread
pool and graceful shutdown are gthread's.

The completeness check only decides when to stop waiting; gunicorn's parser still parses and
validates every request. Where the check cannot make sense of the framing it hands the request
on at once and lets the parser reject it.

Relies on gthread's internals (`handle`, `_DEFER`, `pending_conns`, `TConn`), hence the gunicorn
pin in pyproject.toml.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time

from gunicorn import util
from gunicorn.http import errors
from gunicorn.workers.gthread import _DEFER, ThreadWorker

from botify.settings import Settings

HEADER_LIMIT = 64 * 1024
BODY_LIMIT = 256 * 1024  # nginx's client_max_body_size; MAX_BATCH_BYTES (128 KiB) fits
READ_TIMEOUT = Settings.load().request_read_timeout  # BOTIFY_REQUEST_READ_TIMEOUT
_RECV = 256 * 1024

COMPLETE, INCOMPLETE = "complete", "incomplete"


def request_state(data: bytes) -> tuple[str, int | None]:
    """(COMPLETE or INCOMPLETE, error status) of the first request in `data`.

    COMPLETE also when the framing makes no sense (the parser will answer 400 or 501); an error
    status when the request is too large to buffer.
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return (COMPLETE, 431) if len(data) > HEADER_LIMIT else (INCOMPLETE, None)
    if end > HEADER_LIMIT:
        return COMPLETE, 431
    length = coding = None
    for line in data[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = value.strip()
        elif name == b"transfer-encoding":
            coding = value.strip().lower()
    body = end + 4
    if coding is not None:
        return _chunked_state(data, body) if coding.endswith(b"chunked") else (COMPLETE, None)
    if length is None or not length.isdigit():
        return COMPLETE, None  # no body, or a Content-Length the parser will reject
    if int(length) > BODY_LIMIT:
        return COMPLETE, 413
    return (COMPLETE if len(data) - body >= int(length) else INCOMPLETE), None


def _chunked_state(data: bytes, pos: int) -> tuple[str, int | None]:
    start = pos
    while True:
        if pos - start > BODY_LIMIT:
            return COMPLETE, 413
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return (COMPLETE, 413) if len(data) - start > BODY_LIMIT else (INCOMPLETE, None)
        size_text = data[pos:eol].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return COMPLETE, None  # the parser answers InvalidChunkSize
        if size < 0:
            return COMPLETE, None
        if size == 0:  # last chunk: trailers end with an empty line
            trailers_done = data.startswith(b"\r\n", eol + 2) or data.find(b"\r\n\r\n", eol) >= 0
            return (COMPLETE if trailers_done else INCOMPLETE), None
        pos = eol + 2 + size + 2
        if pos > len(data):
            return INCOMPLETE, None


def json_error(status: int, reason: str, message: str) -> bytes:
    """A complete HTTP/1.1 error response with a JSON `{"message": ...}` body; it closes."""
    body = json.dumps({"message": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    408: "Request Timeout",
    413: "Content Too Large",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}
_MESSAGES = {
    408: f"the request was not complete within {READ_TIMEOUT:g} s",
    413: f"body larger than {BODY_LIMIT} bytes",
    431: f"request headers larger than {HEADER_LIMIT} bytes",
}


def protocol_error_status(exc: BaseException) -> int:
    """The status for one of gunicorn's parse errors: 4xx for what the client sent, 501 for a
    transfer coding HTTP lets us not implement, 505 for an HTTP major version other than 1."""
    if isinstance(exc, errors.InvalidResponseHeader | errors.InvalidResponseHeaderName):
        return 500  # the application's fault
    if isinstance(exc, errors.LimitRequestLine):
        return 414
    if isinstance(exc, errors.LimitRequestHeaders):
        return 431
    if isinstance(exc, errors.ExpectationFailed):
        return 417
    if isinstance(exc, errors.UnsupportedTransferCoding):
        return 501
    if isinstance(exc, errors.InvalidHTTPVersion) and isinstance(exc.version, tuple):
        return 505
    if isinstance(exc, errors.ForbiddenProxyRequest):
        return 403
    if isinstance(exc, errors.ConfigurationProblem):
        return 500
    return 400 if isinstance(exc, errors.ParseException) else 500


class BufferedThreadWorker(ThreadWorker):
    """gthread that never blocks a thread on a request still arriving; see the module docstring."""

    def handle(self, conn):  # in a pool thread
        if self.cfg.is_ssl:
            return super().handle(conn)
        try:
            verdict = self._read_request(conn)
        except Exception:
            self.log.exception("Error reading a request")
            return False
        if verdict is True:
            return super().handle(conn)  # the parser finds the whole request buffered
        return verdict  # _DEFER: back to the event loop until more arrives; False: close

    def _read_request(self, conn):
        """Read what has arrived without blocking: True when the request is complete, _DEFER
        to wait for more in the event loop, False (after answering, if anyone is there) to
        close the connection."""
        if not conn.initialized:
            conn.init()  # plain HTTP: only creates the parser, no I/O
            conn.continued = False
            conn.read_deadline = None
        if conn.read_deadline is None:
            conn.read_deadline = time.monotonic() + READ_TIMEOUT
        if conn.sock.gettimeout() != 0.0:  # new connections are blocking, kept-alive ones not
            conn.sock.setblocking(False)
        buffer = conn.parser.unreader.buf
        buffer.seek(0, os.SEEK_END)
        # One read per readiness event: a request from nginx arrives in one piece, and more
        # pieces (a slow client) come back through the event loop.
        closed = False
        try:
            chunk = conn.sock.recv(_RECV)
            closed = not chunk
            buffer.write(chunk)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            closed = True
        data = buffer.getvalue()
        state, status = request_state(data) if data else (INCOMPLETE, None)
        if status is not None:
            return self._reject(conn, status)
        if state == COMPLETE:
            conn.read_deadline = None
            conn.continued = False
            conn.data_ready = True  # gthread's own wait for a first byte is not needed
            return True
        if closed:  # the client left with nothing or half a request: nobody to answer
            return False
        if not self.alive or time.monotonic() > conn.read_deadline:
            return self._reject(conn, 408) if data else False
        # A client that sent `Expect: 100-continue` waits for this before its body. gunicorn sends
        # it again when it parses the request: a client reads any number of 1xx answers.
        end = data.find(b"\r\n\r\n")
        if end >= 0 and not conn.continued and b"100-continue" in data[:end].lower():
            conn.continued = True
            with contextlib.suppress(OSError):
                conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        return _DEFER

    @staticmethod
    def _reject(conn, status: int) -> bool:
        with contextlib.suppress(OSError):
            util.write_nonblock(conn.sock, json_error(status, _REASONS[status], _MESSAGES[status]))
        return False

    def murder_pending(self):
        """Close waiting connections past their deadline: READ_TIMEOUT for a request that is
        still arriving (408 if any of it came), gthread's keep-alive timeout otherwise."""
        now = time.monotonic()
        for conn in list(self.pending_conns):
            deadline = conn.timeout
            if getattr(conn, "read_deadline", None) is not None:
                deadline = min(deadline, conn.read_deadline)
            if deadline > now and self.alive:
                continue
            self.pending_conns.remove(conn)
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)
            self.nr_conns -= 1
            if conn.parser is not None and conn.parser.unreader.buf.tell():
                self._reject(conn, 408)
            conn.close()

    def _keepalive_after(self, conn, keepalive):
        # A body the app did not read is drained first; a malformed one cannot be: close.
        try:
            return super()._keepalive_after(conn, keepalive)
        except errors.ParseException:
            return False

    def handle_error(self, req, client, addr, exc):
        status = protocol_error_status(exc)
        if status == 500:
            self.log.exception("Error handling request")
            message = "internal error"
        else:
            self.log.warning("Invalid request: %s", exc)
            message = f"{type(exc).__name__}: {exc}"[:200]
        try:
            util.write_nonblock(client, json_error(status, _REASONS[status], message))
        except OSError as error:
            if error.errno not in (errno.EPIPE, errno.ECONNRESET):
                self.log.debug("Failed to send error message.")
