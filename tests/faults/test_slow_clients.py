"""64 slow or half-finished clients straight to one replica, and 64 through nginx: good requests
to that replica keep p99 <= 50 ms, the slow ones get a JSON 408 when their time is up, and no
request is logged twice."""

from __future__ import annotations

import http.client
import os
import socket
import time
import urllib.parse

import pytest

from tests.stack.conftest import needs_nginx

from .conftest import READ_TIMEOUT, events_since, once_each, p99

SLOW = {
    # headers that announce a body, then one byte of it: what froze a gthread replica
    "half body": b"POST /next/7 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n{",
    "half headers": b"POST /next/7 HTTP/1.1\r\nHost: x\r\nContent-Type: appl",
    "nothing": b"",
}


def open_slow(port: int, count: int) -> list[tuple[str, socket.socket]]:
    kinds = list(SLOW)
    conns = []
    for i in range(count):
        kind = kinds[i % len(kinds)]
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(SLOW[kind])
        conns.append((kind, sock))
    return conns


def good_requests(url: str, first_user: int, count: int) -> list[float]:
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=20)
    latencies = []
    for user in range(first_user, first_user + count):
        started = time.perf_counter()
        conn.request("POST", f"/next/{user}", b'{"track": 3, "time": 0.5}',
                     {"Content-Type": "application/json"})  # fmt: skip
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        assert response.status == 200
    conn.close()
    return latencies


@needs_nginx
@pytest.mark.parametrize(
    ("slow_to", "good_to"), [("replica", "replica"), ("replica", "nginx"), ("nginx", "nginx")]
)
def test_slow_clients_do_not_hold_a_replica(fault_stack, slow_to, good_to):
    """The good requests of ("replica", "nginx") are the issue's users routed through nginx to
    a replica that slow clients reach directly; users hash to both replicas, so half of them
    land on the one under attack."""
    stack = fault_stack
    replica = stack.replica_urls[0]
    urls = {"replica": replica, "nginx": stack.url}
    started_ms = int(time.time() * 1000)
    first = {"replica": 50_000_000, "nginx": 51_000_000}[slow_to] + 100_000 * (good_to == "nginx")
    # The same requests without slow clients first: on a machine other jobs overload, even they
    # can miss 50 ms, and then only "no worse than twice that" is a fair bound.
    baseline = p99(good_requests(urls[good_to], first + 50_000, 300))
    slow = open_slow(urllib.parse.urlsplit(urls[slow_to]).port, 64)
    try:
        time.sleep(0.2)  # all 64 are in before the good requests start
        latencies = good_requests(urls[good_to], first, 300)
        worst = p99(latencies)
        print(f"slow to {slow_to}, good to {good_to}: p99 {worst * 1e3:.1f} ms "
              f"(without slow clients {baseline * 1e3:.1f} ms), "
              f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        assert worst <= (0.050 if baseline <= 0.025 else 2 * baseline)
        if slow_to == "replica" and good_to == "replica":
            # Their time is up: a half-sent request gets a JSON 408, then the connection closes.
            kind, sock = slow[0]
            sock.settimeout(READ_TIMEOUT + 5)
            answer = sock.recv(4096)
            assert kind == "half body" and answer.startswith(b"HTTP/1.1 408 ")
            assert answer.endswith(b'"}') and b"application/json" in answer
    finally:
        for _, sock in slow:
            sock.close()
    users = range(first, first + len(latencies))
    counts = once_each(events_since(stack.log_dir, started_ms), users)
    assert sorted(counts) == list(users) and set(counts.values()) == {1}
    assert 7 not in once_each(events_since(stack.log_dir, started_ms), [7])  # never served
