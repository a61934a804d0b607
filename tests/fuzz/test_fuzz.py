"""Schemathesis against the real local stack (nginx, 2 gunicorn replicas, Redis), with the
service's own /openapi.json: through nginx and straight to one replica, a few hundred requests
per operation (BOTIFY_FUZZ_CASES positive plus as many negative; bench/bench_fuzz.py runs more).
Nothing may fail: no 5xx, no answer that breaks the document, no lost, extra or invalid log line.

The experiments are the seed's five arms (config/experiments.yml) with lists and a session model
live for every user, and users bounded to 0..999 (BOTIFY_MAX_USER), so generated requests reach
the list arms, the session arm and the fallbacks, not only the validation. The fuzzer's cases
are the same in every run (derandomized), so a failure here reproduces.

test_broken.py shows the same harness failing on deliberately broken endpoints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from botify import online_model
from botify.toplists import TopLists
from ops.stack import LocalStack
from tests.conftest import PREFIX
from tests.stack.conftest import needs_nginx

from .harness import fuzz

REPO = Path(__file__).resolve().parents[2]
# bench/bench_fuzz.py sets these: more cases, a random seed, a file for the summaries
CASES = int(os.environ.get("BOTIFY_FUZZ_CASES", "100"))
SEED = int(os.environ["BOTIFY_FUZZ_SEED"]) if os.environ.get("BOTIFY_FUZZ_SEED") else None
REPORT = os.environ.get("BOTIFY_FUZZ_REPORT")
MAX_USER = 999
N_TRACKS = 300


def deploy_lists_and_model(stack: LocalStack, users: int, tracks: int) -> None:
    """Lists for every user and a small session model, live under `core` (what T1-T4 read)."""
    client = stack.redis_client()
    rng = np.random.default_rng(0)
    lists = TopLists(client, "core", PREFIX)
    version, _ = lists.write(
        (u, rng.choice(tracks, 50, replace=False).tolist()) for u in range(users)
    )
    fields = online_model.pack(
        np.arange(tracks), rng.standard_normal((tracks, 8)), {"kind": "fuzz"}
    )
    client.hset(online_model.model_key(PREFIX, "core", version), mapping=fields)
    lists.activate(version)
    client.close()


@pytest.fixture(scope="module")
def stack(world_dir, tmp_path_factory):
    logs = tmp_path_factory.mktemp("fuzz-logs")
    env = {"BOTIFY_MAX_USER": str(MAX_USER)}
    with LocalStack(world_dir, REPO / "config" / "experiments.yml", logs, replicas=2,
                    wait_for="health", env=env) as running:  # fmt: skip
        deploy_lists_and_model(running, MAX_USER + 1, N_TRACKS)
        yield running


@needs_nginx
@pytest.mark.parametrize("target", ["nginx", "replica"])
def test_fuzzing_finds_nothing(stack, target):
    url = stack.url if target == "nginx" else stack.replica_urls[1]
    report = fuzz(url, stack.log_dir, CASES, seed=SEED)
    summary = report.summary()
    print(f"\nfuzz {target}: {json.dumps(summary)}")
    if REPORT:
        with open(REPORT, "a", encoding="utf-8") as f:
            f.write(json.dumps({"target": target, "cases": CASES, "seed": SEED, **summary}) + "\n")
    print("statuses:", dict(sorted(report.statuses.items())))
    assert summary["requests"] >= CASES * 10, summary  # every operation was fuzzed
    assert not report.failures, report.problems()
    assert not report.lost and not report.unexpected and not report.invalid, report.problems()
    # The serving paths were reached, not only validation.
    for operation in ("POST /next/{user}", "POST /last/{user}", "POST /batch/{shard}"):
        assert report.statuses[(operation, 200)] >= CASES // 2, operation
    assert summary["acknowledged_steps"] >= 3 * CASES
