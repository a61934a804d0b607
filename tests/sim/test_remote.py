"""The simulator against a service over HTTP, one request per step (the course client's way), and
the console agent; both are `sim.batch` policies."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from sim.batch import BatchSimulator, run_key
from sim.console import ConsolePolicy
from sim.transport import (
    RemoteRequestError,
    RemoteUnavailable,
    ServicePolicy,
    Steps,
    http_transport,
)
from tests.sim.fake_service import FakeService


def one_step(user: int, track: int, time: float) -> Steps:
    return Steps(["next"], [user], [track], [time], [7])


def test_exact_request_sequence_over_one_connection(small_population):
    n = small_population.n_tracks
    with FakeService(next_track=lambda t: (t * 7 + 1) % n) as service:
        policy = ServicePolicy(http_transport(service.url, "request"))
        # one live session at a time: each session's requests, then the next session's
        result = BatchSimulator(small_population, run_key(4), batch_size=1).run(policy, 2)
        policy.close()
    sessions, current = [], []
    for path, body in service.requests:
        current.append((path, body))
        if path.startswith("/last/"):
            sessions.append(current)
            current = []
    assert len(sessions) == 2 and not current
    result = result.in_order()
    for user, total, tracks, steps in zip(
        result.user.tolist(), result.time.tolist(), result.tracks.tolist(), sessions, strict=True
    ):
        # /next with the first track (heard in full), then with every heard track; /last at the end
        assert [path for path, _ in steps] == [f"/next/{user}"] * tracks + [f"/last/{user}"]
        heard = [body for _, body in steps]
        assert heard[0]["time"] == 1.0
        # what the service answered is what the listener heard next
        assert [b["track"] for b in heard[1:]] == [(b["track"] * 7 + 1) % n for b in heard[:-1]]
        assert sum(b["time"] for b in heard[1:]) == pytest.approx(total)
    assert service.connections == 1  # keep-alive


def test_4xx_is_a_clear_error_not_retried():
    with FakeService() as service:
        service.status = 400
        transport = http_transport(service.url, "request", retries=3)
        with pytest.raises(RemoteRequestError, match="HTTP 400: bad track"):
            transport.send(one_step(1, 2, 0.5))
        transport.close()
    assert len(service.requests) == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_retried_with_backoff_then_fails():
    transport = http_transport(f"http://127.0.0.1:{free_port()}", "request", retries=2,
                               backoff=0.05)  # fmt: skip
    started = time.perf_counter()
    with pytest.raises(RemoteUnavailable, match="after 3 attempts"):
        transport.send(one_step(1, 2, 0.5))
    assert time.perf_counter() - started >= 0.05 + 0.1
    transport.close()


def test_retries_reach_a_service_that_comes_up_late():
    port = free_port()
    started = threading.Event()
    holder = {}

    def start_later():
        time.sleep(0.3)
        holder["service"] = FakeService(port=port).__enter__()
        started.set()

    threading.Thread(target=start_later, daemon=True).start()
    transport = http_transport(f"http://127.0.0.1:{port}", "request", retries=8, backoff=0.05)
    try:
        assert transport.send(one_step(3, 10, 1.0)) == [11]
    finally:
        transport.close()
        started.wait(5)
        holder["service"].__exit__(None, None, None)
    assert holder["service"].requests == [("/next/3", {"track": 10, "time": 1.0})]


def test_console_agent_asks_until_a_known_track():
    answers = iter(["abc", "99", "5"])
    printed = []
    with FakeService() as service:
        console = ConsolePolicy(service.url, lambda _: next(answers), printed.append)
        assert console.ask(1, 2, 0.25) == 5
        console.close()
    assert printed[0] == "user 1 heard 2 't2' by 'A' for 0.25"
    assert printed[-1] == "recommending 5 't5' by 'A'"


def test_console_agent_plays_a_whole_session_in_the_engine(small_population):
    """A person who always types 3: after the first pick every play is a repeat (time 0), so the
    session ends when its budget runs out; the engine reports what the person heard."""
    printed = []
    with FakeService() as service:
        console = ConsolePolicy(service.url, lambda _: "3", printed.append)
        result = BatchSimulator(small_population, run_key(2), batch_size=1).run(console, 1)
        console.close()
    tracks = int(result.tracks[0])
    assert sum(line.startswith("recommending 3 ") for line in printed) == tracks
    assert printed[-1].startswith(f"user {int(result.user[0])}: session over after {tracks} tracks")
