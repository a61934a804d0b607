"""Malformed HTTP through a real gunicorn replica and through nginx: every error is JSON with the
right status (4xx for the client's faults, 501/505 only where HTTP asks for them), never HTML,
and nothing of a rejected request reaches the event log."""

from __future__ import annotations

import json
import socket
import urllib.parse

import pytest

from tests.stack.conftest import needs_nginx, read_events

J = b"Content-Type: application/json\r\n"
BODY = b'{"track": 1, "time": 0.5}'
POST = b"POST /next/9 HTTP/1.1\r\nHost: x\r\n" + J

# name -> (raw request, status from the replica, status from nginx)
CASES = {
    "bad request line": (b"GARBAGE\r\n\r\n", 400, 400),
    "HTTP/2.0 request line": (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, 505),
    "URI too long": (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, 414),
    "header too large": (
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n",
        431,
        431,
    ),  # fmt: skip
    "too many headers": (
        b"GET / HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: 1\r\n" % i for i in range(200))
        + b"\r\n",
        431,
        431,
    ),  # fmt: skip
    # RFC 9110 lets a server ignore an expectation it does not know: nginx serves the request.
    "unknown expectation": (
        POST.replace(b"/9 ", b"/8 ") + b"Expect: foo\r\nContent-Length: 25\r\n\r\n" + BODY,
        417,
        200,
    ),  # fmt: skip
    "unknown transfer coding": (POST + b"Transfer-Encoding: gzip\r\n\r\n", 400, 501),
    "body too large": (POST + b"Content-Length: 10000000\r\n\r\n{", 413, 413),
    "bad Content-Length": (POST + b"Content-Length: abc\r\n\r\n{", 400, 400),
    "InvalidChunkSize": (
        POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        400,
        400,
    ),  # fmt: skip
    "ChunkMissingTerminator": (
        POST + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
        400,
        400,
    ),  # fmt: skip
    "InvalidChunkExtension": (
        POST + b"Transfer-Encoding: chunked\r\n\r\n2;a\x00b\r\n{}\r\n0\r\n\r\n",
        400,
        400,
    ),  # fmt: skip
    "OPTIONS": (b"OPTIONS /next/9 HTTP/1.1\r\nHost: x\r\n\r\n", 405, 405),
    "fullwidth digit user": (
        b"POST /next/%EF%BC%91 HTTP/1.1\r\nHost: x\r\n" + J + b"Content-Length: 25\r\n\r\n" + BODY,
        404,
        404,
    ),  # fmt: skip
    "arabic-indic digit track": (b"GET /track/%D9%A3 HTTP/1.1\r\nHost: x\r\n\r\n", 404, 404),
    "unknown method": (b"FOO /next/9 HTTP/1.1\r\nHost: x\r\n\r\n", 405, 405),
    "nginx's error location": (b"GET /_botify_error HTTP/1.1\r\nHost: x\r\n\r\n", 404, 404),
}


def exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < _length(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


def _length(answer: bytes) -> int:
    head, _, _ = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(head) + 4 + int(line.split(b":")[1])
    return 1 << 30


@needs_nginx
@pytest.mark.parametrize("via", ["replica", "nginx"])
def test_protocol_errors_are_json(fault_stack, via):
    stack = fault_stack
    url = stack.replica_urls[0] if via == "replica" else stack.url
    port = urllib.parse.urlsplit(url).port
    wrong = {}
    for name, (request, from_replica, from_nginx) in CASES.items():
        answer = exchange(port, request)
        head, _, body = answer.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else None
        headers = head.lower()
        try:
            message = json.loads(body)["message"]
        except (ValueError, KeyError, TypeError):
            message = None
        expected = from_replica if via == "replica" else from_nginx
        if (
            status != expected
            or b"content-type: application/json" not in headers
            or (status != 200 and not message)
        ):
            wrong[name] = (status, head[:60], body[:80])
        if name == "OPTIONS":
            assert b"\r\nallow: post" in headers
    assert wrong == {}
    assert [e for e in read_events(stack.log_dir) if e["user"] == 9] == []
    with socket.create_connection(("127.0.0.1", port)) as sock:  # and a good one still works
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
