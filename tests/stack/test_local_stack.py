"""The local stack end to end: embedded Redis, real gunicorn replicas, Debian's nginx in front."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
import redis

from botify.toplists import TopLists
from ops.stack import LocalStack, StackError, find_nginx
from tests.conftest import PREFIX
from tests.stack.conftest import N_TRACKS, alive, descendants, needs_nginx, read_events, wait_dead


class Client:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closed it."""

    def __init__(self, url: str, timeout: float = 10.0):
        parsed = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        payload = json.dumps(body).encode()
        for attempt in (1, 2):
            try:
                self.conn.request(
                    "POST", path, body=payload, headers={"Content-Type": "application/json"}
                )
                response = self.conn.getresponse()
                return response.status, json.loads(response.read() or b"{}")
            except (ConnectionError, http.client.RemoteDisconnected):
                # Only a stale keep-alive connection (closed before this request) is retried.
                self.conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get(self, path: str) -> int:
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        response.read()
        return response.status

    def close(self) -> None:
        self.conn.close()


def deploy_lists(redis_url: str, users) -> None:
    """A new active `core` version with a 20-track list for each of `users`."""
    lists = TopLists(redis.Redis.from_url(redis_url), "core", PREFIX)
    rng = random.Random(0)
    version, _ = lists.write((user, rng.sample(range(N_TRACKS), 20)) for user in users)
    lists.activate(version)
    lists.client.close()


@pytest.fixture(scope="module")
def stack(world_dir, tmp_path_factory):
    """2 replicas + nginx serving a control arm and a list arm (which needs Redis)."""
    if find_nginx() is None:
        pytest.skip("nginx is not installed (run tools/system-packages.sh as root)")
    config = tmp_path_factory.mktemp("ab")
    (config / "ab.yml").write_text(
        "route: AB\nexperiments:\n  - name: AB\n    arms:\n"
        "      - {name: C, recommender: sticky_artist}\n"
        "      - {name: T1, recommender: sorted_indexed, params: {lists: core}}\n"
    )
    log_root = tmp_path_factory.mktemp("stack-logs")
    with LocalStack(world_dir, config / "ab.yml", log_root, replicas=2, nginx="on") as running:
        deploy_lists(running.redis_url, range(200))
        yield running


# A replica killed, Redis frozen, killed or flushed under load: tests/faults/.


@needs_nginx
@pytest.mark.parametrize("target", ["replica", "nginx"])
def test_keep_alive_has_no_nagle_stall(stack, target):
    """200 sequential requests on one connection: a 40 ms Nagle/delayed-ACK stall would show."""
    url = stack.replica_urls[1] if target == "replica" else stack.url
    client = Client(url)
    sock_ids, latencies = set(), []
    for i in range(200):
        start = time.perf_counter()
        status, _ = client.post(f"/next/{i}", {"track": i % N_TRACKS, "time": 1.0})
        latencies.append(time.perf_counter() - start)
        assert status == 200
        sock_ids.add(id(client.conn.sock))
    client.close()
    assert len(sock_ids) == 1  # really one kept-alive connection
    assert statistics.median(latencies) < 0.005, f"p50 {statistics.median(latencies) * 1e3:.1f} ms"


def test_without_nginx_the_first_replica_is_the_url(
    world_dir, sticky_experiments, tmp_path, caplog
):
    with LocalStack(world_dir, sticky_experiments, tmp_path, replicas=2, nginx="off") as stack:
        assert stack.url == stack.replica_urls[0]
        client = Client(stack.url)
        assert client.post("/last/3", {"track": 2, "time": 0.25}) == (200, {"user": 3})
        client.close()
        pids = set(stack.replica_pids)
        pids |= {pid for pid in map(int, _group_members(pids))}
    assert "not balanced" in caplog.text
    assert wait_dead(pids, timeout=1) == set()
    (event,) = read_events(tmp_path)
    assert (event["message"], event["replica"]) == ("last", "recommender-1")


def _group_members(pgids: set[int]) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) in pgids:
                    members.append(int(entry.name))
            except ProcessLookupError:
                continue
    return members


def test_a_replica_that_cannot_start_fails_the_stack_and_leaves_nothing(
    tmp_path, sticky_experiments
):
    world = tmp_path / "world"
    world.mkdir()
    (world / "tracks.json").write_text("this is not JSON\n")
    before = descendants(os.getpid())
    with pytest.raises(StackError, match="recommender-1 exited"):
        LocalStack(world, sticky_experiments, tmp_path / "logs", replicas=1, nginx="off").start()
    assert wait_dead(descendants(os.getpid()) - before, timeout=5) == set()


@contextlib.contextmanager
def stack_cli(*args: object):
    """`python -m ops.stack up ARGS` with piped text output; killed and closed on the way out."""
    cli = subprocess.Popen(
        [sys.executable, "-m", "ops.stack", "up", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield cli
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        cli.stdout.close()
        cli.stderr.close()


@needs_nginx
def test_cli_serves_through_nginx_and_stops_cleanly(world_dir, sticky_experiments, tmp_path):
    from ops.redis_server import free_port

    port = free_port()
    log_root = tmp_path / "logs"
    with stack_cli(
        "--world", world_dir, "--experiments", sticky_experiments,
        "--log-dir", log_root, "--replicas", 2, "--port", port, "--nginx", "on",
    ) as cli:  # fmt: skip
        line = cli.stdout.readline()
        assert line == f"READY http://127.0.0.1:{port}\n", cli.stderr.read()
        children = descendants(cli.pid)
        names = {Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] for pid in children}
        assert any(b"nginx" in n for n in names) and any(b"redis-server" in n for n in names)
        client = Client(f"http://127.0.0.1:{port}")
        for user in range(10):  # nginx spreads users over the two replicas
            status, body = client.post(f"/next/{user}", {"track": user, "time": 0.9})
            assert status == 200 and 0 <= body["track"] < N_TRACKS
        assert client.post("/last/0", {"track": 4, "time": 0.1}) == (200, {"user": 0})
        client.close()
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(30) == 0
    assert wait_dead(children, timeout=1) == set(), "stray processes after stop"
    assert not any(alive(pid) for pid in children)
    events = read_events(log_root)
    assert len(events) == 11
    by_replica = {e["replica"] for e in events}
    assert by_replica == {"recommender-1", "recommender-2"}
    # Each replica wrote only its own folder. Parsed events are compared, never their text: a
    # latency below 0.1 ms is written as 0.000095 by the log's encoder and 9.5e-05 by json.
    parsed = {
        p: [json.loads(line) for line in p.read_text().splitlines()]
        for p in log_root.rglob("events-*.jsonl")
    }
    for event in events:
        (path,) = [p for p, lines in parsed.items() if event in lines]
        assert path.parent.name == event["replica"]


def test_a_stack_whose_lists_are_not_deployed_yet_serves_and_warns(
    world_dir, tmp_path, caplog, redis_url
):
    """The A/B stack starts before training: READY (auto) with a warning; /ready follows the lists."""
    experiments = tmp_path / "ab.yml"
    experiments.write_text(
        "route: AB\nexperiments:\n  - name: AB\n    arms:\n"
        "      - {name: C, recommender: sticky_artist}\n"
        "      - {name: T1, recommender: sorted_indexed, params: {lists: core}}\n"
    )
    strict = LocalStack(
        world_dir, experiments, tmp_path / "strict", replicas=1, nginx="off",
        redis_url=redis_url, wait_for="ready", ready_timeout=3,
    )  # fmt: skip
    with pytest.raises(StackError, match="did not answer 200"):
        strict.start()
    with LocalStack(
        world_dir, experiments, tmp_path / "logs", replicas=1, nginx="off", redis_url=redis_url
    ) as stack:
        assert "no active version" in caplog.text
        client = Client(stack.url)
        assert client.post("/next/1", {"track": 1, "time": 1.0})[0] == 200
        lists = TopLists(redis.Redis.from_url(redis_url), "core", PREFIX)
        lists.activate(lists.write([(1, [5, 6, 7])])[0])
        lists.client.close()
        deadline = time.monotonic() + 5
        while client.get("/ready") != 200:
            assert time.monotonic() < deadline, "lists deployed but the replica never got ready"
            time.sleep(0.1)
        client.close()


def _gunicorn_masters(pid: int) -> list[int]:
    return [
        p
        for p in descendants(pid)
        if alive(p)
        and b"gunicorn" in Path(f"/proc/{p}/cmdline").read_bytes()
        and os.getpgid(p) == p
    ]


def test_cli_restarts_a_replica_that_died(world_dir, sticky_experiments, tmp_path):
    with stack_cli(
        "--world", world_dir, "--experiments", sticky_experiments, "--log-dir", tmp_path,
        "--replicas", 1, "--nginx", "off", "--port", 0,
    ) as cli:  # fmt: skip
        url = cli.stdout.readline().split()[1]
        (master,) = _gunicorn_masters(cli.pid)
        os.killpg(master, signal.SIGKILL)  # the replica dies on its own
        deadline = time.monotonic() + 30
        while True:
            assert cli.poll() is None, cli.stderr.read()
            masters = _gunicorn_masters(cli.pid)
            if masters and masters != [master]:
                with contextlib.suppress(OSError):
                    if Client(url, timeout=1).get("/health") == 200:
                        break
            assert time.monotonic() < deadline, "the replica was not restarted"
            time.sleep(0.1)
        children = descendants(cli.pid)
        cli.send_signal(signal.SIGTERM)
        assert cli.wait(30) == 0
        assert "recommender-1 exited with -9; restarting it" in cli.stderr.read()
    assert wait_dead(children, timeout=1) == set(), "stray processes after stop"


class _Dying:
    """A stand-in child that is dead again right after every start."""

    name = "recommender-1"

    def __init__(self):
        self.starts = 0
        self.proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
        self.proc.wait()

    alive = False

    def kill(self):
        pass

    def start(self):
        self.starts += 1


def test_a_child_that_keeps_dying_is_restarted_with_back_off_then_given_up(
    world_dir, sticky_experiments, tmp_path
):
    from ops import stack as stack_module

    stack = LocalStack(world_dir, sticky_experiments, tmp_path, nginx="off", supervise=False)
    child = _Dying()
    stack._replicas = [child]
    now, restarts_at = 1000.0, []
    while stack.gave_up is None and now < 1100:
        if stack.heal(now=now):
            restarts_at.append(now)
        now += 0.05
    assert child.starts == stack_module.GIVE_UP_AFTER == len(restarts_at)
    gaps = [round(b - a, 2) for a, b in zip(restarts_at, restarts_at[1:], strict=False)]
    assert gaps == sorted(gaps) and gaps[-1] > gaps[0]  # a doubling back-off
    assert "recommender-1 exited with 3" in stack.gave_up


def test_redis_password_from_the_environment_is_required_and_never_printed(
    world_dir, sticky_experiments, tmp_path
):
    secret = "pw-" + os.urandom(8).hex()
    env = {**os.environ, "BOTIFY_REDIS_PASSWORD": secret}
    cli = subprocess.Popen(
        [sys.executable, "-m", "ops.stack", "up", "--world", str(world_dir),
         "--experiments", str(sticky_experiments), "--log-dir", str(tmp_path / "logs"),
         "--replicas", "1", "--nginx", "off", "--port", "0", "--wait-for", "ready"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        url = cli.stdout.readline().split()[1]  # READY needs /ready: the replica authenticated
        client = Client(url)
        assert client.get("/ready") == 200
        client.conn.request("GET", "/ready")
        report = client.conn.getresponse().read().decode()
        client.close()
        redis_pid = next(
            p for p in descendants(cli.pid)
            if b"redis-server" in Path(f"/proc/{p}/cmdline").read_bytes()
        )  # fmt: skip
        port = int(Path(f"/proc/{redis_pid}/cmdline").read_bytes().split(b":")[-1].strip(b"\0"))
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        assert redis.Redis(port=port, password=secret).ping()
        assert secret.encode() not in Path(f"/proc/{redis_pid}/cmdline").read_bytes()
    finally:
        cli.send_signal(signal.SIGTERM)
        out, err = cli.communicate(timeout=30)
    assert cli.returncode == 0
    assert secret not in out + err + report
    assert "127.0.0.1" not in report
    for path in (tmp_path / "logs").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
