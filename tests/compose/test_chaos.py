"""Chaos on the compose stack (`make compose-chaos`; see conftest.py): faults while simulated
listeners run through nginx on the batch path, and what must hold afterwards.

Setup: `up --scale recommender=2` in its own compose project, lists and a session model live for
every user (so the list arms keep cursors and the session arm live sessions in Redis).

1. Redis durability: `docker compose restart redis` keeps every key (lists, cursors, live
   sessions, the version pointer, the model), each byte for byte (DUMP) with its TTL.
2. Chaos: the simulator (sim.batch through sim.transport's batch path, one connection, as
   `python -m sim.run` drives it) runs while these faults come one at a time, each followed by
   a wait until the stack serves again by itself (a probe of all 100 shards through nginx answers
   200 and /ready is 200) and some seconds of traffic:
     - `docker kill` a replica (Docker counts it as a manual stop, so its restart policy leaves
       it down: nginx drops it and the survivor serves its users; then `docker start` brings it
       back, the one operator step, and its users return);
     - a replica's process SIGKILLed from the host, as the OOM killer would: Docker restarts it
       by itself (restart: unless-stopped);
     - `docker compose restart redis`; `docker compose restart nginx`;
     - `docker pause` Redis for 5 s, then unpause.
   Then the logs are pulled (`script/dataclient.py`) and exported (`script.export`), and:
     - every step the simulator saw acknowledged is in the exported dataset exactly once (same
       message, user, track, time and recommendation), and nothing else was logged meanwhile;
     - no user is served from two replicas at once: between two consecutive events of a user
       on different replicas lies a fault's window (from the fault until the stack served
       again), never only steady traffic; and no step is logged twice (above);
     - failed requests are counted (a request whose first attempt got no answer or a 5xx; the
       client retries it) and bounded: at most FAILED_PER_FAULT per fault (see there).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd
import pytest

from sim.batch import BatchSimulator, run_key
from sim.transport import (
    HttpBatch,
    HttpClient,
    RemoteError,
    RemoteRequestError,
    RemoteUnavailable,
    ServicePolicy,
    Steps,
    Transport,
)
from sim.user_model import Population
from sim.world import World

from .composestack import WORLD, Stack, compose_stack, say

PROJECT = "botify-compose-chaos"
PROBES = range(1_000_000, 1_000_100)  # one probe user per shard, outside the simulated users
KEEPERS = range(2_000_000, 2_000_040)  # users whose cursors and sessions the restart must keep
SETTLE_S = 6.0  # traffic between two faults, and before the first
RECOVER_S = 90.0  # the longest a fault may keep the stack from serving
# Why at most 3 failed requests per fault: the simulator has one connection and sends one
# request at a time, so a fault can fail the request in flight (a replica killed under it, nginx
# restarted under it) and, where nginx reloads its upstream (a replica gone, a replica back),
# the next request on a keep-alive connection the old nginx worker closes: 1 + 2 reloads.
# While a part is down the client retries the same request, which counts once.
FAILED_PER_FAULT = 3


# -- the simulator's side: what it saw acknowledged, and what failed --------------------------
class CountingClient(HttpClient):
    """HttpClient whose retries are counted: `failed` requests (the first attempt got no answer
    or a 5xx) and `attempts` that failed, by kind. Retries the same request with backoff until
    it is answered or `give_up_s` passed (a 4xx is our bug: raised at once)."""

    def __init__(self, url: str, give_up_s: float = RECOVER_S):
        super().__init__(url, timeout=15.0, retries=0)
        self.give_up_s = give_up_s
        self.failed = 0
        self.attempts: Counter = Counter()
        self.failures_at: list[float] = []  # wall-clock time of each failed request

    def post(self, path: str, payload: bytes, headers: dict | None = None) -> bytes:
        started, delay, failed = time.monotonic(), 0.05, False
        while True:
            try:
                return super().post(path, payload, headers)
            except RemoteRequestError:
                raise
            except (RemoteUnavailable, RemoteError) as error:
                kind = str(error).split("-> HTTP ")[-1][:3] if "-> HTTP" in str(error) else "conn"
                self.attempts[kind] += 1
                if not failed:
                    failed = True
                    self.failed += 1
                    self.failures_at.append(time.time())
                if time.monotonic() - started > self.give_up_s:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)


class Recorder(Transport):
    """The batch transport, recording every step the service acknowledged (a 200 answered it)."""

    def __init__(self, client: HttpClient):
        self.inner = HttpBatch(client)
        self.acknowledged: Counter = Counter()

    def send(self, steps: Steps) -> list[int | None]:
        answers = self.inner.send(steps)
        for message, user, track, played, answer in zip(
            steps.messages, steps.users, steps.tracks, steps.times, answers, strict=True
        ):
            key = (message, int(user), int(track), float(played), answer)
            self.acknowledged[key] += 1
        return answers

    def close(self) -> None:
        self.inner.close()


@dataclass
class Fault:
    name: str
    command: str
    started: float = 0.0  # wall clock (the events' timestamps are wall clock too)
    served: float = 0.0  # when the stack served again by itself
    settled: float = 0.0  # when the fault's steps were over (a killed replica back in nginx)
    failed: int = 0  # failed requests from this fault until the next one
    notes: list[str] = field(default_factory=list)


# -- the stack's side ------------------------------------------------------------------------
DEPLOY = """
import os, sys, numpy as np, redis
from botify.deploy import deploy
from botify.settings import Settings
users = [int(u) for u in sys.argv[1].split(",")]
tracks = int(sys.argv[2])
client = redis.Redis(host="redis", password=os.environ["BOTIFY_REDIS_PASSWORD"])
rng = np.random.default_rng(0)
lists = [(u, rng.choice(tracks, 100, replace=False).tolist()) for u in users]
model = (np.arange(tracks), rng.standard_normal((tracks, 16)), {"kind": "chaos"})
print(deploy(client, lists, prefix=Settings.load().key_prefix, model=model).active)
"""

SNAPSHOT = """
import hashlib, json, os, redis
client = redis.Redis(host="redis", password=os.environ["BOTIFY_REDIS_PASSWORD"])
read = {  # each type's content in a canonical order (a reloaded hash may iterate differently)
    b"string": lambda key: [client.get(key)],
    b"hash": lambda key: sorted(client.hgetall(key).items()),
    b"list": lambda key: client.lrange(key, 0, -1),
    b"set": lambda key: sorted(client.smembers(key)),
    b"zset": lambda key: client.zrange(key, 0, -1, withscores=True),
}
keys = {}
for key in client.scan_iter(count=1000):
    content = repr(read[client.type(key)](key)).encode()
    keys[key.decode()] = [hashlib.sha256(content).hexdigest(), client.pttl(key)]
print(json.dumps(keys))
"""


def in_replica(stack: Stack, script: str, *args: str) -> str:
    """Python in the first replica's container (botify installed, the Redis password set)."""
    return stack.compose("exec", "-T", "--index", "1", "recommender", "python", "-c", script,
                         *args, quiet=True).stdout  # fmt: skip


def kind_of(key: str) -> str:
    parts = key.split(":")
    if parts[1] == "lists":
        return {"active": "version pointer", "versions": "versions", "model": "model"}.get(
            parts[-1], "list"
        )
    return parts[1]  # cursor, session, catalog, ...


def serves(stack: Stack) -> bool:
    """A /next for one user of every shard through nginx answers 200, and /ready is 200."""
    for user in PROBES:
        try:
            if stack.post(f"/next/{user}", {"track": 1, "time": 0.5}) != 200:
                return False
        except OSError:
            return False
    return stack.get("/ready")[0] == 200


def containers(stack: Stack, service: str) -> list[str]:
    return stack.compose("ps", "-q", service, quiet=True).stdout.split()


def replica(stack: Stack, n: int) -> str:
    """The container id of recommender-<n> (running or not)."""
    out = stack.compose("ps", "-a", "--format", "{{.Name}} {{.ID}}", "recommender", quiet=True)
    ids = dict(line.split() for line in out.stdout.splitlines() if line.strip())
    return ids[f"{stack.project}-recommender-{n}"]


def upstream_lines(stack: Stack) -> int:
    out = stack.compose("exec", "-T", "nginx", "cat", "/etc/nginx/botify-upstream.conf",
                        check=False, quiet=True).stdout  # fmt: skip
    return len(out.strip().splitlines())


def docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout.strip()


@pytest.fixture(scope="module")
def stack():
    with compose_stack(PROJECT) as running:
        started = time.monotonic()
        running.compose("build", "recommender", timeout=3600)
        say(f"image built in {time.monotonic() - started:.0f} s")
        running.world_files()
        running.compose("up", "-d", "--scale", "recommender=2", timeout=900)
        running.wait("nginx and both replicas", lambda: running.get("/health")[0] == 200, 300)
        users = [*range(WORLD["users"]), *PROBES, *KEEPERS]
        version = in_replica(running, DEPLOY, ",".join(map(str, users)), str(WORLD["tracks"]))
        say(f"deployed lists and a model for {len(users)} users: {version.strip()}")
        running.wait("/ready", lambda: running.get("/ready")[0] == 200, timeout=60)
        yield running


def test_a_redis_restart_keeps_lists_cursors_sessions_and_the_pointer(stack):
    for user in KEEPERS:  # cursors (list arms) and live sessions (the session arm)
        for track in (1, 2):
            assert stack.post(f"/next/{user}", {"track": track, "time": 0.5}) == 200
    before = json.loads(in_replica(stack, SNAPSHOT))
    kinds = Counter(kind_of(key) for key in before)
    say(f"Redis before the restart: {len(before)} keys {dict(kinds)}")
    for kind in ("version pointer", "list", "model", "cursor", "session"):
        assert kinds[kind] > 0, f"no {kind} key to keep: {dict(kinds)}"

    stack.compose("restart", "redis", timeout=120)
    stack.wait("Redis after the restart", lambda: stack.get("/ready")[0] == 200, timeout=60)
    after = json.loads(in_replica(stack, SNAPSHOT))
    changed = [key for key in before if after.get(key, [None])[0] != before[key][0]]
    lost_ttl = [key for key in before if before[key][1] > 0 and after.get(key, [0, -2])[1] <= 0]
    say(f"after `docker compose restart redis`: {len(after)} keys, {len(changed)} changed or "
        f"missing, {len(lost_ttl)} lost their TTL")  # fmt: skip
    assert not changed and set(after) == set(before), changed[:10]
    assert not lost_ttl, lost_ttl[:10]
    keeper = stack.compose("logs", "keeper", quiet=True).stdout
    assert "restored" not in keeper  # nothing for the keeper to do: Redis kept it all


def test_chaos_while_listeners_run(stack):
    world = World.load(stack.world)
    client = CountingClient(stack.url)
    recorder = Recorder(client)
    policy = ServicePolicy(recorder)
    simulator = BatchSimulator(Population(world), run_key(7), batch_size=256)
    stop = threading.Event()
    outcome: dict = {}

    def listen() -> None:
        try:
            outcome["result"] = simulator.run(policy, 1_000_000, stop=stop.is_set)
        except BaseException as error:  # reported by the main thread
            outcome["error"] = error

    started_ms = int(time.time() * 1000)
    listener = threading.Thread(target=listen, name="listeners", daemon=True)
    listener.start()
    faults = [
        Fault("replica killed (docker kill), then docker start", "docker kill <recommender-1>"),
        Fault("replica process crashed (SIGKILL from the host)", "kill -9 <pid of recommender-2>"),
        Fault("Redis restarted", "docker compose restart redis"),
        Fault("nginx restarted", "docker compose restart nginx"),
        Fault("Redis paused 5 s", "docker pause <redis>; sleep 5; docker unpause <redis>"),
    ]
    try:
        time.sleep(SETTLE_S)
        for fault in faults:
            if "error" in outcome:
                break
            inject(stack, fault)
            time.sleep(SETTLE_S)
    finally:
        stop.set()
        listener.join(timeout=120)
        policy.close()
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    steps = sum(recorder.acknowledged.values())
    ends = [f.started for f in faults[1:]] + [time.time()]
    for fault, end in zip(faults, ends, strict=True):
        fault.failed = sum(fault.started <= t < end for t in client.failures_at)
    steady = sum(t < faults[0].started for t in client.failures_at)
    say(f"listeners: {len(result.user)} sessions finished, {steps} steps acknowledged, "
        f"{client.failed} failed requests (attempts that failed: {dict(client.attempts)})")  # fmt: skip

    # -- every acknowledged step exactly once in the exported logs --------------------------------
    events = stack.pull(2, "chaos", since_ms=started_ms)
    simulated = events[events["user"] < WORLD["users"]]
    logged = Counter(
        (m, int(u), int(t), float(p), None if pd.isna(r) else int(r))
        for m, u, t, p, r in zip(simulated["message"], simulated["user"], simulated["track"],
                                 simulated["time"], simulated["recommendation"], strict=True)
    )  # fmt: skip
    missing = recorder.acknowledged - logged
    extra = logged - recorder.acknowledged
    say(f"exported: {len(simulated)} events of simulated users; acknowledged steps missing: "
        f"{sum(missing.values())}, logged but never acknowledged: {sum(extra.values())}")  # fmt: skip

    # -- no user on two replicas at once: replica changes only inside fault windows -------------
    # + 2.5 s: nginx sends a replica it marked failed nothing for fail_timeout (2 s) after that
    windows = [(f.started * 1000, f.settled * 1000 + 2500) for f in faults]
    moves = in_windows = 0
    outside = []
    for user, rows in simulated.sort_values(["timestamp"], kind="stable").groupby("user"):
        replicas, stamps = rows["replica"].tolist(), rows["timestamp"].tolist()
        for i in range(1, len(replicas)):
            if replicas[i] != replicas[i - 1]:
                moves += 1
                # the route changed between these two events: a fault must lie in between
                if any(stamps[i - 1] <= hi and lo <= stamps[i] for lo, hi in windows):
                    in_windows += 1
                else:
                    outside.append((user, replicas[i - 1], replicas[i], stamps[i]))
    by_replica = simulated.groupby("replica").size().to_dict()
    t0 = started_ms
    say(
        "fault windows (s after the start): "
        + ", ".join(f"{(lo - t0) / 1000:.1f}-{(hi - t0) / 1000:.1f}" for lo, hi in windows)
    )
    if outside:
        at = Counter(round((stamp - t0) / 1000) for *_, stamp in outside)
        say(f"changes outside them, by second: {dict(sorted(at.items()))}")
    say(f"users changing replica: {moves} changes, all inside fault windows: {not outside}; "
        f"events by replica {by_replica}")  # fmt: skip

    for fault in faults:  # what the listeners got meanwhile: the share of fallback answers
        during = simulated[(simulated["timestamp"] >= fault.started * 1000)
                           & (simulated["timestamp"] <= fault.settled * 1000)]  # fmt: skip
        fault.notes.insert(0, f"{len(during)} steps served meanwhile, "
                              f"{int(during['fallback'].sum())} by a fallback")  # fmt: skip
    nginx_log = stack.compose("logs", "nginx", quiet=True).stdout
    refused = sum("connect() failed" in line for line in nginx_log.splitlines())
    say(f"nginx: {refused} connections to a replica refused or timed out, each sent to the next")
    say("fault | served again after | failed requests | notes")
    for fault in faults:
        say(f"  {fault.name} | {fault.served - fault.started:.1f} s | {fault.failed}"
            + (f" | {'; '.join(fault.notes)}" if fault.notes else ""))  # fmt: skip
    summary = {
        "sessions": len(result.user), "steps": steps, "failed_requests": client.failed,
        "failed_attempts": dict(client.attempts), "missing": sum(missing.values()),
        "unacknowledged_logged": sum(extra.values()), "replica_changes": moves,
        "faults": {f.name: {"served_after_s": round(f.served - f.started, 1), "failed": f.failed}
                   for f in faults},
    }  # fmt: skip
    say("summary " + json.dumps(summary))

    assert steady == 0, "requests failed before any fault"
    assert not missing, f"acknowledged but not in the exported logs: {list(missing.items())[:5]}"
    assert not extra, f"logged but not acknowledged (twice?): {list(extra.items())[:5]}"
    assert not outside, f"a user changed replica outside any fault: {outside[:5]}"
    assert set(by_replica) == {"recommender-1", "recommender-2"}
    for fault in faults:
        assert fault.failed <= FAILED_PER_FAULT, (fault.name, fault.failed)
    assert steps > 10_000 and len(result.user) > 1_000


def inject(stack: Stack, fault: Fault) -> None:
    say(f"fault: {fault.name} ($ {fault.command})")
    fault.started = time.time()
    redis_id = containers(stack, "redis")[0]
    if fault.name.startswith("replica killed"):
        victim = replica(stack, 1)
        docker("kill", victim)
        stack.wait("nginx to drop the killed replica", lambda: upstream_lines(stack) == 1, 60)
        stack.wait("the survivor to serve every shard", lambda: serves(stack), RECOVER_S)
        fault.served = time.time()
        fault.notes.append(
            f"state after the kill: {docker('inspect', '-f', '{{.State.Status}}', victim)}"
        )
        docker("start", victim)  # the operator's step: Docker leaves a killed container down
        # nginx takes it back as soon as Docker's DNS names it, before gunicorn listens: its
        # users bounce between the two until it serves (part of this fault's window)
        stack.wait("the replica back and healthy",
                   lambda: docker("inspect", "-f", "{{.State.Health.Status}}", victim) == "healthy"
                   and upstream_lines(stack) == 2, RECOVER_S)  # fmt: skip
        stack.wait("every shard served", lambda: serves(stack), RECOVER_S)
    elif fault.name.startswith("replica process crashed"):
        victim = replica(stack, 2)
        restarts = int(docker("inspect", "-f", "{{.RestartCount}}", victim))
        os.kill(int(docker("inspect", "-f", "{{.State.Pid}}", victim)), signal.SIGKILL)
        stack.wait("Docker to restart the replica",
                   lambda: int(docker("inspect", "-f", "{{.RestartCount}}", victim)) > restarts
                   and docker("inspect", "-f", "{{.State.Health.Status}}", victim) == "healthy",
                   RECOVER_S)  # fmt: skip
        stack.wait("both replicas in nginx", lambda: upstream_lines(stack) == 2, 60)
        stack.wait("every shard served", lambda: serves(stack), RECOVER_S)
        fault.served = time.time()
        fault.notes.append("restarted by Docker (restart: unless-stopped)")
    elif fault.name == "Redis restarted":
        stack.compose("restart", "redis", timeout=120)
        stack.wait("every shard served", lambda: serves(stack), RECOVER_S)
        fault.served = time.time()
    elif fault.name == "nginx restarted":
        stack.compose("restart", "nginx", timeout=120)
        stack.wait("every shard served", lambda: serves(stack), RECOVER_S)
        fault.served = time.time()
    elif fault.name.startswith("Redis paused"):
        docker("pause", redis_id)
        time.sleep(5)
        docker("unpause", redis_id)
        stack.wait("every shard served", lambda: serves(stack), RECOVER_S)
        fault.served = time.time()
    fault.settled = time.time()
    say(f"  served again {fault.served - fault.started:.1f} s after the fault")
