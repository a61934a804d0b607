"""A replica SIGKILLed under load (per-request and batch): the supervisor restarts it, nginx
serves from the other meanwhile, at most 0.1 % of requests fail, no acknowledged step is lost and
none is logged twice."""

from __future__ import annotations

import os
import signal
import time
import urllib.request

import pytest

from tests.stack.conftest import needs_nginx

from .conftest import Load, events_since, once_each, run_load


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=0.5) as response:
            return response.status == 200
    except OSError:
        return False


@needs_nginx
@pytest.mark.slow
def test_a_killed_replica_is_restarted_and_loses_no_acknowledged_step(fault_stack):
    stack = fault_stack
    started_ms = int(time.time() * 1000)
    # One client per path: at most one request of each is in flight on the killed replica.
    singles = [Load(stack.url, 10_000_000)]
    batches = Load(stack.url, 20_000_000, path="batch", batch=10)
    victim = stack.replica_pids[0]
    restarts = stack.restarts("recommender-1")
    state = {"killed_at": None, "back_at": None, "up_at": None}

    def scenario() -> bool:
        done = sum(load.requests for load in singles)
        now = time.monotonic()
        if state["killed_at"] is None and done >= 300:
            os.killpg(victim, signal.SIGKILL)  # master and worker, like `docker kill`
            state["killed_at"] = now
        elif (
            state["killed_at"]
            and not state["back_at"]
            and stack.restarts("recommender-1") > restarts
            and stack.replica_pids[0] != victim
        ):
            state["back_at"] = now
            state["back_ms"] = int(time.time() * 1000)
        elif state["back_at"] and not state["up_at"] and healthy(stack.replica_urls[0]):
            state["up_at"] = now  # restarted and serving again
        # Enough requests that 0.1 % is a real bound, and traffic well after the restart: nginx
        # tries a failed replica again only after fail_timeout (2 s, ops/stack/nginx.py).
        return bool(state["up_at"]) and now - state["up_at"] > 3.0 and done >= 1000

    try:
        run_load([*singles, batches], scenario, timeout=60)
    finally:
        print(state, stack.replica_pids, victim)

    requests = sum(load.requests for load in singles)
    failed = sum(load.failed for load in singles)
    print(f"per-request: {requests} requests, {failed} failed; batch: {batches.requests} requests")
    assert failed <= 0.001 * requests, [load.rejected + load.errors for load in singles]
    assert batches.failed <= 1  # at most the one batch in flight on the killed replica

    events = events_since(stack.log_dir, started_ms)
    acknowledged = [u for load in [*singles, batches] for u in load.acknowledged]
    counts = once_each(events, acknowledged)
    assert set(counts) == set(acknowledged), "an acknowledged step has no event line"
    ours = [e["user"] for e in events if 10_000_000 <= e["user"] < 30_000_000]
    assert len(ours) == len(set(ours)), "a step was logged twice"
    assert len(set(ours) - set(acknowledged)) <= 1 + batches.batch  # in flight at the kill
    # The restarted replica serves again: its shards hash back to it.
    assert any(
        e["replica"] == "recommender-1" and e["timestamp"] > state["back_ms"] for e in events
    )
    assert stack.restarts("recommender-1") == restarts + 1
