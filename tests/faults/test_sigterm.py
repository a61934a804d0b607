"""SIGTERM to `python -m ops.stack up` under load: it exits 0, leaves no process, and every
request that got a 200 has its event line on disk (exactly once)."""

from __future__ import annotations

import signal
import time

import pytest

from ops.redis_server import free_port
from tests.stack.conftest import descendants, needs_nginx, read_events, wait_dead
from tests.stack.test_local_stack import stack_cli

from .conftest import Load, run_load


@needs_nginx
@pytest.mark.slow
def test_sigterm_under_load_keeps_every_acknowledged_event(world_dir, sticky_experiments, tmp_path):
    port = free_port()
    logs = tmp_path / "logs"
    with stack_cli(
        "--world", world_dir, "--experiments", sticky_experiments, "--log-dir", logs,
        "--replicas", 2, "--port", port, "--nginx", "on",
    ) as cli:  # fmt: skip
        assert cli.stdout.readline() == f"READY http://127.0.0.1:{port}\n", cli.stderr.read()
        children = descendants(cli.pid)
        loads = [Load(f"http://127.0.0.1:{port}", 70_000_000 + 100_000 * i) for i in range(3)]
        state: dict[str, float] = {}

        def scenario() -> bool:
            if not state and sum(load.requests for load in loads) >= 300:
                cli.send_signal(signal.SIGTERM)
                state["at"] = time.monotonic()
            return bool(state) and cli.poll() is not None

        run_load(loads, scenario)
        assert cli.wait() == 0
    assert wait_dead(children, timeout=2) == set(), "stray processes after SIGTERM"
    acknowledged = [u for load in loads for u in load.acknowledged]
    assert len(acknowledged) >= 300
    logged = [e["user"] for e in read_events(logs) if e["user"] >= 70_000_000]
    assert len(logged) == len(set(logged)), "an event was logged twice"
    assert set(acknowledged) <= set(logged), "a 200 without its event line"
    # Only requests in flight when the stack went away may be logged without their answer.
    assert len(set(logged) - set(acknowledged)) <= len(loads)
