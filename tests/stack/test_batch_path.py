"""The simulator through nginx and two replicas, by batch and by single requests: the same events.

The same seeded sessions run once over `POST /next|/last` (one request per step) and once over
`POST /batch/<shard>`; the event logs must be identical apart from timestamps and latency, each
user's events must sit in one replica's file in order, and both replicas must have served.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import redis

from botify.toplists import TopLists
from ops.stack import LocalStack
from sim.batch import BatchSimulator, run_key
from sim.transport import ServicePolicy, http_transport
from sim.user_model import Population
from sim.world import WorldShape, generate
from tests.conftest import PREFIX

from .conftest import needs_nginx

REPO = Path(__file__).resolve().parents[2]


def lines_by_file(log_root: Path) -> dict[Path, list[dict]]:
    return {
        path: [json.loads(line) for line in path.read_text().splitlines()]
        for path in sorted(log_root.rglob("events-*.jsonl*"))
    }


def per_user(files: dict[Path, list[dict]], skip: dict[Path, int]) -> dict[int, tuple]:
    """user -> (replica folder, the user's parsed events in file order without timestamp/latency)."""
    out: dict[int, list] = defaultdict(list)
    where: dict[int, set] = defaultdict(set)
    for path, events in files.items():
        for e in events[skip.get(path, 0) :]:
            where[e["user"]].add(path.parent.name)
            out[e["user"]].append({k: v for k, v in e.items() if k not in ("timestamp", "latency")})
    for user, folders in where.items():
        assert len(folders) == 1, f"user {user} has events in {folders}"
    return {u: (next(iter(where[u])), out[u]) for u in out}


@needs_nginx
@pytest.mark.slow
def test_batch_and_single_requests_log_the_same_events(tmp_path):
    world = generate(11, WorldShape(tracks=600, users=120, dim=8)).save(tmp_path / "world")
    population = Population(generate(11, WorldShape(tracks=600, users=120, dim=8)))
    logs = tmp_path / "logs"
    with LocalStack(world, REPO / "config" / "experiments.yml", logs, replicas=2) as stack:
        client = redis.Redis.from_url(stack.redis_url)
        rng = np.random.default_rng(0)
        top = TopLists(client, "core", PREFIX)
        lists = [(u, rng.choice(600, 40, replace=False).tolist()) for u in range(100)]
        top.activate(top.write(lists)[0])  # users 100..119 have none: their arms fall back
        client.close()

        def simulate(mode: str):
            policy = ServicePolicy(http_transport(stack.url, mode))
            try:
                return BatchSimulator(population, run_key(5), batch_size=64).run(policy, 400)
            finally:
                policy.close()

        single = simulate("request")
        after_single = {path: len(events) for path, events in lines_by_file(logs).items()}
        batched = simulate("batch")
        files = lines_by_file(logs)

    assert np.array_equal(single.in_order().time, batched.in_order().time)
    first = per_user({p: e[: after_single.get(p, 0)] for p, e in files.items()}, {})
    second = per_user(files, after_single)
    assert first == second
    assert sum(len(events) for _, events in second.values()) == batched.steps + len(batched.user)
    assert len({folder for folder, _ in second.values()}) == 2  # both replicas served
    fallbacks = [e["fallback"] for _, events in second.values() for e in events]
    assert any(fallbacks) and not all(fallbacks)
