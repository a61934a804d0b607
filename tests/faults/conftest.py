"""Real-process fault tests: one local stack (embedded Redis, 2 gunicorn replicas, nginx) shared by
the tests of this folder, bounded load from a few client threads, real signals.

Each test keeps its own load small (a few threads, a few seconds) and asserts the issue's bounds
(docs/stack.md#faults); the machine is shared, so the bounds, not the load, carry the margin.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path

import pytest

from botify import affinity
from botify.toplists import TopLists
from ops.stack import LocalStack, find_nginx
from tests.conftest import PREFIX
from tests.stack.conftest import N_TRACKS, read_events, sticky_experiments, world_dir  # noqa: F401

READ_TIMEOUT = 2.0  # the replicas' BOTIFY_REQUEST_READ_TIMEOUT here (10 s by default)


def ab_experiments(path: Path) -> Path:
    path.write_text(
        "route: AB\nexperiments:\n  - name: AB\n    arms:\n"
        "      - {name: C, recommender: sticky_artist}\n"
        "      - {name: T1, recommender: sorted_indexed, params: {lists: core}}\n"
    )
    return path


@pytest.fixture(scope="session")
def fault_stack(world_dir, tmp_path_factory):  # noqa: F811
    """2 replicas + nginx + embedded Redis, supervised, with a short request read timeout."""
    if find_nginx() is None:
        pytest.skip("nginx is not installed (run tools/system-packages.sh as root)")
    config = ab_experiments(tmp_path_factory.mktemp("faults") / "ab.yml")
    logs = tmp_path_factory.mktemp("fault-logs")
    env = {"BOTIFY_REQUEST_READ_TIMEOUT": str(READ_TIMEOUT)}
    with LocalStack(world_dir, config, logs, replicas=2, nginx="on", env=env) as stack:
        yield stack


def deploy(stack: LocalStack, users, tracks=range(N_TRACKS), k: int = 20, seed: int = 0) -> str:
    """A new active `core` version: for each user, k tracks drawn from `tracks`."""
    client = stack.redis_client()
    lists = TopLists(client, "core", PREFIX)
    rng = random.Random(seed)
    version, _ = lists.write((user, rng.sample(list(tracks), k)) for user in users)
    lists.activate(version)
    client.close()
    return version


def events_since(log_dir: Path, after_ms: int) -> list[dict]:
    return [e for e in read_events(log_dir) if e["timestamp"] >= after_ms]


def once_each(events: list[dict], users) -> Counter:
    """How many events each of `users` has (a request logged twice shows as 2)."""
    wanted = set(users)
    return Counter(e["user"] for e in events if e["user"] in wanted)


class Load(threading.Thread):
    """One client thread on one keep-alive connection; every step is for a fresh user.

    `path="next"`: POST /next/<user>; `path="batch"`: POST /batch/<shard> with `batch` fresh users
    of one shard per request (shards in turn). Records every answer; never resends a request, so
    a step logged twice can only come from the server side.
    """

    def __init__(self, url: str, first_user: int, path: str = "next", batch: int = 10):
        super().__init__(daemon=True)
        parsed = urllib.parse.urlsplit(url)
        self.address = (parsed.hostname, parsed.port)
        self.path, self.batch = path, batch
        self.first_user = first_user - first_user % affinity.SHARDS
        self.sent = 0
        self.stop = threading.Event()
        self.statuses: list[int] = []  # one per answered request
        self.errors: list[str] = []  # requests that got no answer (connection errors)
        self.latencies: list[float] = []
        self.acknowledged: list[int] = []  # users whose step got a 200
        self.rejected: list[str] = []  # non-200 answers (all JSON)
        self.answers: list[tuple[int, int, float]] = []  # (user, track, time.monotonic())

    def _users(self) -> tuple[str, list[int]]:
        n, self.sent = self.sent, self.sent + 1
        if self.path == "next":
            user = self.first_user + n
            return f"/next/{user}", [user]
        rnd, shard = divmod(n, affinity.SHARDS)
        base = self.first_user + rnd * affinity.SHARDS * self.batch + shard
        return f"/batch/{shard:02d}", [base + affinity.SHARDS * i for i in range(self.batch)]

    def run(self) -> None:
        try:
            self._run()
        except BaseException as error:  # seen by the test (assert not load.crashed)
            self.crashed = repr(error)

    crashed: str | None = None

    def _run(self) -> None:
        conn = http.client.HTTPConnection(*self.address, timeout=20)
        headers = {"Content-Type": "application/json"}
        while not self.stop.is_set():
            path, users = self._users()
            steps = [{"user": u, "track": u % N_TRACKS, "time": 0.5} for u in users]
            body = json.dumps({"steps": steps} if self.path == "batch" else steps[0]).encode()
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException) as error:
                # no whole answer: refused, reset, or cut mid-response (a replica killed while
                # writing it: IncompleteRead, RemoteDisconnected)
                self.errors.append(repr(error))
                conn.close()
                time.sleep(0.05)
                continue
            self.latencies.append(time.perf_counter() - started)
            self.statuses.append(response.status)
            try:
                answer = json.loads(raw)  # every answer is JSON, errors too
            except ValueError:
                raise AssertionError(
                    f"{path} -> {response.status}, not JSON: {raw[:200]!r}"
                ) from None
            if response.status != 200:
                self.rejected.append(f"{response.status} {answer}")
                continue
            results = answer["results"] if self.path == "batch" else [answer]
            for user, result in zip(users, results, strict=True):
                assert result["user"] == user and "error" not in result, result
                self.acknowledged.append(user)
                self.answers.append((user, result.get("track"), time.monotonic()))
        conn.close()

    @property
    def requests(self) -> int:
        return len(self.statuses) + len(self.errors)

    @property
    def failed(self) -> int:
        return len(self.errors) + sum(status != 200 for status in self.statuses)


def run_load(loads: list[Load], until, timeout: float = 30.0) -> None:
    """Start `loads`, call `until()` repeatedly until it is true (it may act), stop them."""
    for load in loads:
        load.start()
    deadline = time.monotonic() + timeout
    try:
        while not until():
            assert time.monotonic() < deadline, (
                f"the scenario did not finish in {timeout} s: "
                f"{[(load.requests, load.failed, load.crashed) for load in loads]}"
            )
            time.sleep(0.02)
    finally:
        for load in loads:
            load.stop.set()
        for load in loads:
            load.join(30)
    assert [load.crashed for load in loads if load.crashed] == []


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
