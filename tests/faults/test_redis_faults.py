"""Redis frozen (SIGSTOP), killed (SIGKILL) and flushed under load: never a 5xx, list arms fall
back and come back, one warning when an outage starts and one when it ends, a dead Redis is
restarted by the stack, and an emptied one is reported (log line, /ready)."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request

from tests.conftest import PREFIX
from tests.stack.conftest import needs_nginx

from .conftest import Load, deploy, events_since, run_load

LIST_USERS = range(40_000_000, 40_012_000)  # load i starts at 40_000_000 + 3_000 * i


def replica_log_lines(stack, text: str) -> int:
    return sum(
        (stack.stack_log_dir / f"recommender-{i}.log").read_text().count(text) for i in (1, 2)
    )


def ready(stack) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(stack.url + "/ready", timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def wait_for(condition, timeout: float = 10.0) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "timed out"
        time.sleep(0.05)
    return time.monotonic() - started


@needs_nginx
def test_redis_frozen_then_thawed(fault_stack):
    stack = fault_stack
    deploy(stack, LIST_USERS)
    down = replica_log_lines(stack, "Redis unavailable")
    up = replica_log_lines(stack, "Redis answers again")
    started_ms = int(time.time() * 1000)
    loads = [Load(stack.url, LIST_USERS.start + 3_000 * i) for i in range(2)]
    state = {"stopped": None, "thawed": None}

    def scenario() -> bool:
        now = time.monotonic()
        if state["stopped"] is None and sum(load.requests for load in loads) >= 100:
            os.kill(stack.redis_server.pid, signal.SIGSTOP)
            state["stopped"] = now
        elif state["stopped"] and not state["thawed"] and now - state["stopped"] > 2.0:
            os.kill(stack.redis_server.pid, signal.SIGCONT)
            state["thawed"] = now
        return bool(state["thawed"]) and now - state["thawed"] > 1.5

    run_load(loads, scenario)
    assert [load.failed for load in loads] == [0, 0]
    # A frozen Redis costs one socket timeout (0.25 s) per worker, then the breaker answers.
    assert max(max(load.latencies) for load in loads) < 1.0
    events = events_since(stack.log_dir, started_ms)
    listed = sorted(
        (e for e in events if e["experiments"]["AB"] == "T1" and e["user"] in LIST_USERS),
        key=lambda e: e["timestamp"],
    )
    assert any(e["fallback"] for e in listed)  # served from the fallback while frozen
    assert not any(e["fallback"] for e in listed[-20:])  # and from the lists again after
    # One warning per replica when the outage starts and one when it ends (not one per retry).
    assert replica_log_lines(stack, "Redis unavailable") - down == 2
    assert replica_log_lines(stack, "Redis answers again") - up == 2
    assert ready(stack)[0] == 200


@needs_nginx
def test_redis_killed_is_restarted_and_emptied_redis_is_reported(fault_stack):
    stack = fault_stack
    first = deploy(stack, LIST_USERS)
    time.sleep(1.2)  # past the workers' 1 s pointer cache: they serve `first` before the kill
    restarts = stack.restarts("redis")
    old_pid = stack.redis_server.pid
    loads = [Load(stack.url, LIST_USERS.start + 6_000 + 3_000 * i) for i in range(2)]
    state = {"killed": None}

    def scenario() -> bool:
        if state["killed"] is None and sum(load.requests for load in loads) >= 100:
            os.kill(old_pid, signal.SIGKILL)
            state["killed"] = time.monotonic()
        return (
            state["killed"] is not None
            and stack.restarts("redis") > restarts
            and time.monotonic() - state["killed"] > 2.0
        )

    run_load(loads, scenario)
    assert [load.failed for load in loads] == [0, 0]
    assert stack.redis_server.pid != old_pid and stack.redis_server.running
    # Back, but empty: the service refilled what it owns, readiness names what is missing.
    client = stack.redis_client()
    assert wait_for(lambda: client.exists(f"{PREFIX}:catalog"), timeout=5) < 5
    status, report = ready(stack)
    assert status == 503 and report["reasons"] == ["list set 'core' has no active version"]
    assert "127.0.0.1" not in json.dumps(report)  # no internal address in answers
    # one line per replica process that saw the loss, naming the version it lost
    assert 1 <= replica_log_lines(stack, f"no active version any more (was {first};") <= 2

    # Flushed under traffic: same answers (fallback, no 5xx), same report, lists come back.
    second = deploy(stack, LIST_USERS)
    assert wait_for(lambda: ready(stack)[0] == 200) < 5
    # /ready reads the pointer uncached; serving re-reads it at most once a second
    # (CachedTopLists): past that, the traffic before the flush is served from `second`
    time.sleep(1.2)
    loads = [Load(stack.url, LIST_USERS.start)]
    state = {"flushed": None}

    def flush() -> bool:
        if state["flushed"] is None and loads[0].requests >= 50:
            client.flushall()
            state["flushed"] = time.monotonic()
        return state["flushed"] is not None and time.monotonic() - state["flushed"] > 1.5

    run_load(loads, flush)
    assert loads[0].failed == 0
    assert ready(stack)[0] == 503
    assert 1 <= replica_log_lines(stack, f"no active version any more (was {second};") <= 2
    deploy(stack, LIST_USERS)
    client.close()
    assert wait_for(lambda: ready(stack)[0] == 200) < 5
