"""Botify on a real 3-master Redis Cluster (`redis+cluster://`, botify.redis_link.connect): lists,
cursors, the live session, the batch path's pipelined ops, deploy with a model, rollback,
pruning, readiness and the keeper's restore. Each node holds only its own slots, so anything
that read or scanned one node only would miss about two thirds of the keys."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import requests

from botify import affinity, online_model
from botify.app import create_app
from botify.deploy import deploy, rollback
from botify.redis_link import connect
from botify.settings import Settings
from botify.toplists import TopLists
from botify.user_state import (
    ClearSession,
    MemoryState,
    NextInList,
    PickInList,
    PushSession,
    RedisState,
    ResetCursor,
    memory_lists,
)
from ops.journal import Journal
from ops.keeper import Keeper
from ops.redis_server import free_port
from tests.conftest import PREFIX
from tests.redis_cluster import LocalCluster

from .conftest import N_TRACKS, read_events, service_config, user_list


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(masters=3) as running:
        yield running


@pytest.fixture
def client(cluster):
    cluster.flushall()
    client = connect(cluster.url)
    yield client
    client.close()


def keys_on_nodes(cluster, pattern: str) -> list[int]:
    counts = []
    for node in cluster.nodes():
        counts.append(sum(1 for _ in node.scan_iter(match=pattern, count=1000)))
        node.close()
    return counts


def a_model(seed: int = 0):
    embeddings = np.random.default_rng(seed).standard_normal((N_TRACKS, 4)).astype(np.float32)
    return np.arange(N_TRACKS), embeddings, {"kind": "test"}


def test_lists_live_on_every_node_and_are_counted_and_deleted_on_all(cluster, client):
    top = TopLists(client, "core", PREFIX)
    version, written = top.write((u, user_list(u)) for u in range(300))
    on_nodes = keys_on_nodes(cluster, f"{PREFIX}:lists:core:{version}:*")
    assert written == 300 and sum(on_nodes) == 300 and min(on_nodes) > 50  # really sharded
    assert top.count(version) == 300
    top.activate(version)
    assert top.get(299).tolist() == user_list(299)
    # SCAN through one node's plain client sees only that node's share
    assert TopLists(cluster.nodes()[0], "core", PREFIX).count(version) == on_nodes[0] < 300

    other, _ = top.write((u, [1, 2]) for u in range(300))
    assert top.delete(other) == 300
    assert keys_on_nodes(cluster, f"{PREFIX}:lists:core:{other}:*") == [0, 0, 0]
    assert top.count(version) == 300


def test_state_ops_of_many_users_in_one_call_match_the_in_memory_twin(cluster, client):
    """The batch path's state call: every op of 80 users (all slots, all nodes) in one
    `RedisState.run`, round after round, answered exactly as `MemoryState` answers them;
    once after every node forgot its Lua scripts (a restart), which are loaded again."""
    rows = [(u, user_list(u, 20)) for u in range(60)]  # users 60..79 have no list
    top = TopLists(client, "core", PREFIX)
    top.activate(top.write(rows)[0])
    on_redis = RedisState(client, Settings(session_length=5, pointer_cache_seconds=0))
    in_memory = MemoryState({"core": memory_lists(rows)}, session_length=5)
    rng = random.Random(7)
    prev = {u: rng.randrange(N_TRACKS) for u in range(80)}
    for round_ in range(6):
        ops = []
        for u in range(80):  # like the service: one step per user, a /next's ops or a /last's
            if (u + round_) % 5:
                ops.append(NextInList("core", "sorted_indexed:core", u, prev[u],
                                      rng.choice([-1, 3])))  # fmt: skip
                ops.append(PickInList("core", u, rng.randrange(2**40)))
                ops.append(PushSession(u, prev[u], round(rng.random(), 2)))
            else:
                ops += [ResetCursor("sorted_indexed:core", u), ClearSession(u)]
        if round_ == 3:
            for node in cluster.nodes():
                node.script_flush()
        got, want = on_redis.run(ops), in_memory.run(ops)
        for op, a, b in zip(ops, got, want, strict=True):
            if isinstance(op, PushSession):
                assert np.array_equal(a, b), op
            else:
                assert a == b, op
        served = {op.user: r for op, r in zip(ops, got, strict=True) if isinstance(op, NextInList)}
        assert sum(r is not None for r in served.values()) > 40  # users with lists walk them
        for u, track in served.items():  # mostly go on from the served track, sometimes jump
            prev[u] = track if track is not None and rng.random() < 0.8 else rng.randrange(200)
    assert min(keys_on_nodes(cluster, f"{PREFIX}:session:*")) > 0
    assert min(keys_on_nodes(cluster, f"{PREFIX}:cursor:*")) > 0
    user = 17  # a user's list, cursor and session share one slot (the hash tag)
    slots = {client.keyslot(key) for key in (
        top.key(top.active_version(), user), on_redis.cursor_key("sorted_indexed:core", user),
        on_redis.session_key(user))}  # fmt: skip
    assert len(slots) == 1


def test_deploy_with_a_model_rollback_pruning_and_the_keepers_restore(cluster, client, tmp_path):
    journal = tmp_path / "journal"
    rows = [(u, user_list(u, 30)) for u in range(200)]
    switches = [
        deploy(client, rows, prefix=PREFIX, keep=3, model=a_model(i), journal=Journal(journal))
        for i in range(4)
    ]
    top = TopLists(client, "core", PREFIX)
    assert [s.users for s in switches] == [200] * 4 and all(s.model for s in switches)
    assert switches[3].deleted == (switches[0].active,)  # pruned beyond keep=3
    assert list(top.versions()) == [s.active for s in switches[1:]]
    assert keys_on_nodes(cluster, f"{PREFIX}:lists:core:{switches[0].active}:*") == [0, 0, 0]

    back = rollback(client, prefix=PREFIX, journal=Journal(journal))
    assert (back.active, back.users) == (switches[2].active, 200)
    assert top.active_version() == switches[2].active

    cluster.flushall()  # Redis emptied: the keeper gives it the journal's active version back
    keeper = Keeper(client, journal, ["core"], PREFIX)
    assert keeper.check() == [f"core/{switches[2].active}"]
    assert top.active_version() == switches[2].active and top.count(switches[2].active) == 200
    assert min(keys_on_nodes(cluster, f"{PREFIX}:lists:core:{switches[2].active}:*")) > 0
    fields = client.hgetall(online_model.model_key(PREFIX, "core", switches[2].active))
    assert json.loads(fields[b"meta"])["tracks"] == N_TRACKS
    assert keeper.check() == []


def test_gunicorn_workers_forked_from_the_preloaded_app_serve_from_the_cluster(
    cluster, client, tracks_json, tmp_path
):
    """The image's command: the cluster client is built in the master and used by the forked
    workers (`preload_app`)."""
    deploy(client, [(u, user_list(u)) for u in range(300)], prefix=PREFIX, model=a_model())
    port = free_port()
    config = service_config(cluster.url, tracks_json, tmp_path / "log", "r-1")
    env = {**os.environ, **{f"BOTIFY_{key}": value for key, value in config.items()}}
    command = [sys.executable, "-m", "gunicorn", "-c", "python:ops.gunicorn_conf", "--bind",
               f"127.0.0.1:{port}", "--workers", "2", "botify.app:create_app()"]  # fmt: skip
    server = subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()
            time.sleep(0.1)
        for user in range(300):  # a connection each, so both workers take some
            answer = requests.post(f"{url}/next/{user}", json={"track": 5, "time": 0.9})
            assert answer.status_code == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)
        server.stderr.close()
    files = list((tmp_path / "log").glob("events-*.jsonl"))
    events = read_events(tmp_path / "log")
    assert len(files) == 2 and len(events) == 300  # both workers served
    assert not any(e["fallback"] for e in events if e["experiments"]["AB"] != "C")


def test_the_service_on_a_cluster_answers_as_on_one_redis(
    cluster, client, redis_url, redis_client, tracks_json, tmp_path
):
    """The same steps with the same seeds, per request and by batch, against an app on the
    cluster and an app on a single Redis: the same answers and the same event lines (apart from
    timestamp and latency); /ready follows the deploy; /last clears the session."""
    rows = [(u, user_list(u)) for u in range(400)]
    apps = {}
    for name, url in (("cluster", cluster.url), ("single", redis_url)):
        config = service_config(url, tracks_json, tmp_path / name, "r-1")
        apps[name] = create_app({**config, "POINTER_CACHE_SECONDS": 0}).test_client()
    assert apps["cluster"].get("/ready").status_code == 503  # no lists yet
    for redis_of in (client, redis_client):
        deploy(redis_of, rows, prefix=PREFIX, model=a_model())
    ready = apps["cluster"].get("/ready")
    assert ready.status_code == 200, ready.json
    assert ready.json["lists"]["core"]["users"] == 400
    assert ready.json["models"]["core"]["loaded"] is True

    shard = 42
    users = [u for u in range(500) if u % affinity.SHARDS == shard]  # 42..442: 442 has no list
    answers = {}
    for name, app in apps.items():
        got = []
        for step in range(6):
            message = "last" if step == 5 else "next"
            steps = [{"user": u, "track": (u + step) % N_TRACKS, "time": 0.2 * (step % 5),
                      "seed": 1000 * u + step, "message": message} for u in users]  # fmt: skip
            batch = app.post(f"/batch/{shard}", json={"steps": steps})
            assert batch.status_code == 200, batch.json
            got.append(batch.json["results"])
            for s in steps[:2]:  # and per request, for two users of another shard
                user = s["user"] + 1
                path = f"/{message}/{user}"
                one = app.post(path, json={"track": s["track"], "time": s["time"]},
                               headers={"X-Botify-Seed": str(s["seed"])})  # fmt: skip
                assert one.status_code == 200
                got.append(one.json)
        answers[name] = got
    assert answers["cluster"] == answers["single"]

    def lines(name):
        drop = ("timestamp", "latency")
        return [{k: v for k, v in e.items() if k not in drop} for e in read_events(tmp_path / name)]

    events = lines("cluster")
    assert events == lines("single")
    assert len(events) == 6 * (len(users) + 2)
    listed = [e for e in events if e["user"] < 400 and e["experiments"]["AB"] != "C"]
    assert listed and not any(e["fallback"] for e in listed)  # the list arms served from Redis
    assert any(e["fallback"] for e in events if e["user"] == 442 and e["experiments"]["AB"] != "C")
    assert keys_on_nodes(cluster, f"{PREFIX}:session:*") == [0, 0, 0]  # every session ended
