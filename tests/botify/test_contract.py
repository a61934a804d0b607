"""The recommender contract, run over every registered recommender (benfred/implicit's way).

Adding a recommender is one file plus one config entry: this test then covers it too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from botify import recommenders
from botify.catalog import Catalog
from botify.online_model import MemoryModels, OnlineModel
from botify.recommenders import Context
from botify.step import Step
from botify.user_state import MemoryState
from sim.batch import BatchSimulator, run_key
from sim.transport import InProcess, ServicePolicy
from sim.user_model import Population
from sim.world import WorldShape, generate

NAMES = recommenders.names()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return generate(3, WorldShape(tracks=400, users=40, dim=8))


@pytest.fixture(scope="module")
def catalog(world) -> Catalog:
    return world.catalog


@pytest.fixture(scope="module")
def data(world, tmp_path_factory):
    """A list for every user and a model of every track, as files (the trainer's formats)."""
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    lists = {
        u: rng.choice(world.n_tracks, 30, replace=False).tolist() for u in range(world.n_users)
    }
    (folder / "recs.jsonl").write_text(
        "".join(json.dumps({"user": u, "tracks": t}) + "\n" for u, t in lists.items())
    )
    embeddings = rng.standard_normal((world.n_tracks, 6)).astype(np.float32)
    np.savez(
        folder / "item_embeddings.npz", tracks=np.arange(world.n_tracks), embeddings=embeddings
    )
    return folder, lists, embeddings


def build(name, catalog, data=None):
    models = MemoryModels()
    lists = {}
    if data is not None:
        _, by_user, embeddings = data
        model = OnlineModel.from_arrays(np.arange(len(catalog)), embeddings, catalog)
        models = MemoryModels({"core": model})
        lists = {"core": {u: np.asarray(t) for u, t in by_user.items()}}
    return recommenders.build(name, Context(catalog, models=models)), MemoryState(lists)


def session(rec, state, user: int, first: int, seed: int, steps: int = 12):
    """One session's answers, each step fed the previous answer (and a varying time)."""
    out, prev = [], first
    for i in range(steps):
        step = Step("next", user, prev, [1.0, 0.5, 0.05, 0.9][i % 4], seed + i)
        results = state.run(list(rec.ops(step)))
        rec.ctx.rng.serve(step)  # as the service does: ctx.rng is the step's generator
        try:
            answer = rec.recommend(step, results)
        finally:
            rec.ctx.rng.serve(None)
        out.append((int(answer.track), bool(answer.fallback)))
        prev = answer.track
    end = Step("last", user, prev, 0.3, 0)
    state.run(list(rec.end_ops(end)))
    rec.on_session_end(user)
    return out


@pytest.mark.parametrize("name", NAMES)
def test_answers_catalog_ids(name, catalog, data):
    rec, state = build(name, catalog, data)
    for user in range(5):
        for track, _ in session(rec, state, user, first=user * 7, seed=user * 100):
            assert track in catalog


@pytest.mark.parametrize("name", NAMES)
def test_same_seeds_same_answers(name, catalog, data):
    first = session(*build(name, catalog, data), user=3, first=11, seed=42)
    again = session(*build(name, catalog, data), user=3, first=11, seed=42)
    assert first == again


@pytest.mark.parametrize("name", NAMES)
def test_sets_fallback_exactly_when_it_has_no_data(name, catalog, data):
    with_data = session(*build(name, catalog, data), user=2, first=5, seed=1)
    without = session(*build(name, catalog, None), user=2, first=5, seed=1)
    assert not any(f for _, f in with_data)
    needs_data = recommenders.get(name).uses_state
    assert all(f for _, f in without) if needs_data else not any(f for _, f in without)


@pytest.mark.parametrize("name", NAMES)
def test_survives_session_end_and_serves_the_next_session(name, catalog, data):
    rec, state = build(name, catalog, data)
    for n in range(3):  # three sessions of one user, each ended by /last
        assert len(session(rec, state, 4, first=n, seed=n * 10, steps=4)) == 4


@pytest.mark.parametrize("name", NAMES)
def test_runs_in_process_in_the_simulator(name, world, data):
    folder, _, _ = data
    transport = InProcess.build(
        world.catalog,
        name,
        lists={"core": folder / "recs.jsonl"},
        models={"core": folder / "item_embeddings.npz"},
    )
    result = BatchSimulator(Population(world), run_key(5), 16).run(ServicePolicy(transport), 40)
    assert len(result.user) == 40 and result.steps >= 40 * 5  # the budget is 5
