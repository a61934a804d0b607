"""The replica worker's request framing check and its protocol-error statuses (ops/worker.py);
the worker itself runs under real gunicorn in tests/faults."""

from __future__ import annotations

import pytest
from gunicorn.http import errors

from ops.worker import (
    BODY_LIMIT,
    COMPLETE,
    HEADER_LIMIT,
    INCOMPLETE,
    json_error,
    protocol_error_status,
    request_state,
)

HEAD = b"POST /next/1 HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n", (INCOMPLETE, None)),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", (COMPLETE, None)),
        (HEAD + b"Content-Length: 3\r\n\r\n{}", (INCOMPLETE, None)),
        (HEAD + b"content-length: 2\r\n\r\n{}", (COMPLETE, None)),
        (HEAD + b"Content-Length: 2\r\n\r\n{}GET / HTTP/1.1\r\n", (COMPLETE, None)),  # pipelined
        (HEAD + b"Content-Length: abc\r\n\r\n", (COMPLETE, None)),  # the parser rejects it
        (HEAD + b"Content-Length: %d\r\n\r\n" % (BODY_LIMIT + 1), (COMPLETE, 413)),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n", (INCOMPLETE, None)),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n", (INCOMPLETE, None)),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", (COMPLETE, None)),
        (
            HEAD + b"Transfer-Encoding: chunked\r\n\r\n2;x=1\r\n{}\r\n0\r\nT: 1\r\n\r\n",
            (COMPLETE, None),
        ),
        (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", (COMPLETE, None)),  # parser: 400
        (HEAD + b"Transfer-Encoding: gzip\r\n\r\n", (COMPLETE, None)),  # parser: rejects
        (HEAD + b"X: " + b"a" * HEADER_LIMIT, (COMPLETE, 431)),
    ],
)
def test_request_state(data, expected):
    assert request_state(data) == expected


def test_a_chunked_body_past_the_limit_is_413():
    chunk = b"%x\r\n" % 4096 + b"a" * 4096 + b"\r\n"
    data = HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunk * (BODY_LIMIT // 4096 + 2)
    assert request_state(data) == (COMPLETE, 413)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.InvalidRequestLine("x"), 400),
        (errors.InvalidHTTPVersion((2, 0)), 505),
        (errors.InvalidHTTPVersion("HTTP/x"), 400),
        (errors.LimitRequestLine(9000, 4094), 414),
        (errors.LimitRequestHeaders("too many"), 431),
        (errors.ExpectationFailed("foo"), 417),
        (errors.UnsupportedTransferCoding("gzip"), 501),
        (errors.InvalidChunkSize(b"zz"), 400),
        (RuntimeError("app bug"), 500),
    ],
)
def test_protocol_error_status(error, status):
    assert protocol_error_status(error) == status


def test_json_error_is_a_complete_closing_response():
    raw = json_error(408, "Request Timeout", 'said "no"')
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n")
    assert body == b'{"message": "said \\"no\\""}' and b"Content-Length: %d" % len(body) in head
