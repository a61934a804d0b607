"""A new list version activated under load: no error, every list-arm answer from the old or the
new lists, each user's answers switch once and never back, and all are from the new lists once
the replicas' pointer cache (POINTER_CACHE_SECONDS, 1 s) has expired."""

from __future__ import annotations

import time

from botify.experiments import Experiments
from tests.stack.conftest import N_TRACKS, needs_nginx

from .conftest import Load, deploy, run_load

USERS = range(60_000_000, 60_006_000)  # load i starts at 60_000_000 + 3_000 * i
OLD, NEW = range(0, N_TRACKS // 2), range(N_TRACKS // 2, N_TRACKS)  # disjoint: answers tell
CACHE = 1.0


@needs_nginx
def test_model_switch_under_load(fault_stack):
    stack = fault_stack
    routing = Experiments.from_file(stack.experiments).routing
    deploy(stack, USERS, tracks=OLD, seed=1)
    time.sleep(CACHE + 0.1)  # every replica's cached pointer has the old version
    loads = [Load(stack.url, USERS.start + 3_000 * i) for i in range(2)]
    switch: dict[str, float] = {}

    def scenario() -> bool:
        if not switch and sum(load.requests for load in loads) >= 100:
            deploy(stack, USERS, tracks=NEW, seed=2)  # written whole, then one SET of the pointer
            switch["at"] = time.monotonic()
        return bool(switch) and time.monotonic() - switch["at"] > CACHE + 1.5

    run_load(loads, scenario)
    assert [load.failed for load in loads] == [0, 0]
    listed = [
        (u, t, at) for load in loads for u, t, at in load.answers if routing.assign(u).name == "T1"
    ]
    assert all(t in OLD or t in NEW for _, t, _ in listed)
    # A shard lives on one replica (nginx's affinity), which switches once: old, then new.
    for shard in {u % 100 for u, _, _ in listed}:
        sides = "".join("o" if t in OLD else "n" for u, t, _ in sorted(listed, key=lambda a: a[2])
                        if u % 100 == shard)  # fmt: skip
        assert "no" not in sides, f"shard {shard} went back to the old lists: {sides}"
    assert any(t in OLD for _, t, _ in listed) and any(t in NEW for _, t, _ in listed)
    late = [t for _, t, at in listed if at > switch["at"] + CACHE + 0.5]
    assert late and all(t in NEW for t in late)
