from __future__ import annotations

import socket
import threading
import time

import pytest

from sim.agents import ConsoleAgent, RemoteAgent, RemoteRequestError, RemoteUnavailable, run_episode
from sim.env import RecEnv
from tests.sim.fake_service import FakeService


def test_exact_request_sequence_over_one_connection(small_population):
    n = small_population.n_tracks
    env = RecEnv(small_population)
    with (
        FakeService(next_track=lambda t: (t * 7 + 1) % n) as service,
        RemoteAgent(service.url) as agent,
    ):
        sessions = []
        for seed in (4, None):
            run_episode(env, agent, seed)
            sessions.append((env.user, list(env.played), list(env.times)))
    expected = []
    for user, played, times in sessions:
        # /next with the first track (heard in full), then with every heard track; /last at the end
        paths = [f"/next/{user}"] * (len(played) - 1) + [f"/last/{user}"]
        expected += [
            (p, {"track": t, "time": x}) for p, t, x in zip(paths, played, times, strict=True)
        ]
        assert times[0] == 1.0
        # what the service answered is what the listener heard next
        assert played[1:] == [(t * 7 + 1) % n for t in played[:-1]]
    assert service.requests == expected
    assert service.connections == 1  # keep-alive


def test_4xx_is_a_clear_error_not_retried():
    with FakeService() as service:
        service.status = 400
        with (
            RemoteAgent(service.url, retries=3) as agent,
            pytest.raises(RemoteRequestError, match="HTTP 400: bad track"),
        ):
            agent.recommend({"user": 1, "track": 2}, 0.5)
    assert len(service.requests) == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_retried_with_backoff_then_fails():
    agent = RemoteAgent(f"http://127.0.0.1:{free_port()}", retries=2, backoff=0.05)
    started = time.perf_counter()
    with pytest.raises(RemoteUnavailable, match="after 3 attempts"):
        agent.recommend({"user": 1, "track": 2}, 0.5)
    assert time.perf_counter() - started >= 0.05 + 0.1
    agent.close()


def test_retries_reach_a_service_that_comes_up_late():
    port = free_port()
    started = threading.Event()
    holder = {}

    def start_later():
        time.sleep(0.3)
        holder["service"] = FakeService(port=port).__enter__()
        started.set()

    threading.Thread(target=start_later, daemon=True).start()
    try:
        with RemoteAgent(f"http://127.0.0.1:{port}", retries=8, backoff=0.05) as agent:
            assert agent.recommend({"user": 3, "track": 10}, 1.0) == 11
    finally:
        started.wait(5)
        holder["service"].__exit__(None, None, None)
    assert holder["service"].requests == [("/next/3", {"track": 10, "time": 1.0})]


def test_console_agent_asks_until_a_known_track():
    answers = iter(["abc", "99", "5"])
    printed = []
    with (
        FakeService() as service,
        ConsoleAgent(service.url, lambda _: next(answers), printed.append) as agent,
    ):
        assert agent.recommend({"user": 1, "track": 2}, 0.25) == 5
    assert printed[0] == "user 1 heard 2 't2' by 'A' for 0.25"
    assert printed[-1] == "recommending 5 't5' by 'A'"
