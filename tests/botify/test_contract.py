"""The recommender contract, run over every registered recommender (benfred/implicit's way), and
over every arm of every experiments file in config/ (a recommender with its parameters).

Adding a recommender is one file plus one config entry: this test then covers it too. Each one
gets the data it reads under the names it reads it: user lists for its list sets, item-keyed
lists where it needs them (`needs_item_lists`), an online model for every list set.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from botify import recommenders
from botify.catalog import Catalog
from botify.experiments import Experiments
from botify.item_lists import ItemLists, MemoryItemLists, write_item_list_file
from botify.online_model import MemoryModels, OnlineModel
from botify.recommenders import Context
from botify.step import Step
from botify.user_state import MemoryState
from sim.batch import BatchSimulator, run_key
from sim.transport import InProcess, ServicePolicy
from sim.user_model import Population
from sim.world import WorldShape, generate

ROOT = Path(__file__).resolve().parents[2]


def configured_arms() -> list[tuple[str, str, dict]]:
    """(test id, recommender, params): every registered recommender with its defaults, then every
    arm of every experiments file in config/."""
    out = [(name, name, {}) for name in recommenders.names()]
    for path in sorted((ROOT / "config").glob("experiments*.yml")):
        for experiment in Experiments.from_file(path).experiments:
            for arm in experiment.arms:
                label = f"{path.name}:{experiment.name}:{arm.name}:{arm.recommender}"
                out.append((label, arm.recommender, dict(arm.params)))
    return out


ARMS = configured_arms()
IDS = [label for label, _, _ in ARMS]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return generate(3, WorldShape(tracks=400, users=40, dim=8))


@pytest.fixture(scope="module")
def catalog(world) -> Catalog:
    return world.catalog


@pytest.fixture(scope="module")
def data(world, tmp_path_factory):
    """A list for every user, an item list for every track and a model of every track, as files
    (the trainer's formats)."""
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    lists = {
        u: rng.choice(world.n_tracks, 30, replace=False).tolist() for u in range(world.n_users)
    }
    (folder / "recs.jsonl").write_text(
        "".join(json.dumps({"user": u, "tracks": t}) + "\n" for u, t in lists.items())
    )
    items = ItemLists.from_rows(
        (t, rng.choice(world.n_tracks, 20, replace=False).tolist()) for t in range(world.n_tracks)
    )
    write_item_list_file(folder / "items.jsonl", items.rows())
    embeddings = rng.standard_normal((world.n_tracks, 6)).astype(np.float32)
    np.savez(
        folder / "item_embeddings.npz", tracks=np.arange(world.n_tracks), embeddings=embeddings
    )
    return folder, lists, embeddings, items


def build(recommender, params, catalog, data=None):
    ctx = Context(catalog, models=MemoryModels(), item_lists=MemoryItemLists())
    rec = recommenders.build(recommender, ctx, **params)
    lists = {}
    if data is not None:
        _, by_user, embeddings, items = data
        model = OnlineModel.from_arrays(np.arange(len(catalog)), embeddings, catalog)
        names = rec.list_sets()
        ctx.models = MemoryModels({name: model for name in names})
        if rec.needs_item_lists():
            ctx.item_lists = MemoryItemLists({name: items for name in names})
        else:
            lists = {name: {u: np.asarray(t) for u, t in by_user.items()} for name in names}
    return rec, MemoryState(lists)


def needs_data(rec) -> bool:
    """It answers from deployed data (lists, item lists, a model) or per-user state."""
    return rec.uses_state or bool(rec.list_sets())


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


@pytest.mark.parametrize(("label", "name", "params"), ARMS, ids=IDS)
def test_answers_catalog_ids(label, name, params, catalog, data):
    rec, state = build(name, params, catalog, data)
    for user in range(5):
        for track, _ in session(rec, state, user, first=user * 7, seed=user * 100):
            assert track in catalog


@pytest.mark.parametrize(("label", "name", "params"), ARMS, ids=IDS)
def test_same_seeds_same_answers(label, name, params, catalog, data):
    first = session(*build(name, params, catalog, data), user=3, first=11, seed=42)
    again = session(*build(name, params, catalog, data), user=3, first=11, seed=42)
    assert first == again


@pytest.mark.parametrize(("label", "name", "params"), ARMS, ids=IDS)
def test_sets_fallback_exactly_when_it_has_no_data(label, name, params, catalog, data):
    rec, state = build(name, params, catalog, data)
    with_data = session(rec, state, user=2, first=5, seed=1)
    without = session(*build(name, params, catalog, None), user=2, first=5, seed=1)
    assert not any(f for _, f in with_data)
    assert all(f for _, f in without) if needs_data(rec) else not any(f for _, f in without)


@pytest.mark.parametrize(("label", "name", "params"), ARMS, ids=IDS)
def test_survives_session_end_and_serves_the_next_session(label, name, params, catalog, data):
    rec, state = build(name, params, catalog, data)
    for n in range(3):  # three sessions of one user, each ended by /last
        assert len(session(rec, state, 4, first=n, seed=n * 10, steps=4)) == 4


@pytest.mark.parametrize(("label", "name", "params"), ARMS, ids=IDS)
def test_runs_in_process_in_the_simulator(label, name, params, world, catalog, data):
    folder, _, _, _ = data
    rec, _ = build(name, params, catalog)
    kind = "items.jsonl" if rec.needs_item_lists() else "recs.jsonl"
    arm = {"name": "C", "recommender": name, "params": params}
    transport = InProcess.build(
        world.catalog,
        experiments=Experiments.from_dict({"experiments": [{"name": "SIM", "arms": [arm]}]}),
        lists={n: folder / kind for n in rec.list_sets()},
        models={n: folder / "item_embeddings.npz" for n in rec.list_sets()},
    )
    result = BatchSimulator(Population(world), run_key(5), 16).run(ServicePolicy(transport), 40)
    assert len(result.user) == 40 and result.steps >= 40 * 5  # the budget is 5
