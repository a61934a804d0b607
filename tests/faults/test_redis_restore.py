"""An emptied Redis gets its live version back by itself: the stack's keeper restores the deploy
journal's active version (lists and model, same version name) within 5 s of a FLUSHALL."""

from __future__ import annotations

import time

import numpy as np

from botify.deploy import deploy
from botify.toplists import TopLists
from ops.journal import Journal
from ops.stack import LocalStack
from tests.conftest import PREFIX
from tests.stack.conftest import N_TRACKS, needs_nginx

from .conftest import ab_experiments
from .test_redis_faults import ready


@needs_nginx
def test_an_emptied_redis_is_restored_from_the_journal(world_dir, tmp_path):
    journal = tmp_path / "journal"
    config = ab_experiments(tmp_path / "ab.yml")
    with LocalStack(world_dir, config, tmp_path / "logs", replicas=1, journal=journal) as stack:
        client = stack.redis_client()
        rng = np.random.default_rng(0)
        model = (np.arange(N_TRACKS), rng.standard_normal((N_TRACKS, 4)), {"kind": "test"})
        lists = [(u, rng.choice(N_TRACKS, 20, replace=False).tolist()) for u in range(100)]
        version = deploy(client, lists, prefix=PREFIX, model=model, journal=Journal(journal)).active
        assert ready(stack)[0] == 200
        client.flushall()
        flushed = time.monotonic()
        while ready(stack)[0] != 200:
            assert time.monotonic() - flushed < 5.0, "not restored within 5 s"
            time.sleep(0.1)
        top = TopLists(client, "core", PREFIX)
        assert top.active_version() == version
        assert top.get(7).tolist() == dict(lists)[7]
        assert client.exists(f"{PREFIX}:lists:core:{version}:model")
        assert "restored" in (stack.stack_log_dir / "keeper.log").read_text()
        client.close()
