"""Every `next` event logs the probability with which its arm chose the served track.

Exact values on the tiny test world (200 tracks, 20 artists of 10) through the real service (Flask,
a real Redis, the event log), one arm per recommender; then, in-process, every registered
recommender's logged propensity against the frequencies of its own draws over many seeds."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np
import pytest
import yaml

from botify import recommenders
from botify.catalog import Catalog
from botify.deploy import deploy
from botify.item_lists import ItemLists, MemoryItemLists
from botify.online_model import MemoryModels, OnlineModel
from botify.recommenders import Context
from botify.settings import Settings
from botify.step import Step
from botify.toplists import TopLists
from botify.user_state import MemoryState, Picked, PickInList, RedisState
from tests.conftest import PREFIX

from .conftest import N_TRACKS, TRACKS_PER_ARTIST, log_dir, read_events, user_list, write_lists

# One arm per recommender (params where it needs them); list users are 0..499 (`write_lists`).
ARMS = {
    "random": ("random", {}),
    "sticky": ("sticky_artist", {}),
    "sticky26": ("sticky_artist_2026", {}),
    "mixed": ("sticky_artist_mixed", {}),
    "toppop": ("toppop", {"k": 20}),
    "indexed": ("indexed", {"lists": "core"}),
    "sorted": ("sorted_indexed", {"lists": "core"}),
    "cooler": ("cooler_indexed", {"lists": "core"}),
    "session": ("session_core", {"lists": "core"}),
    "i2i": ("i2i", {"lists": "items"}),
    "contextual": ("contextual", {"lists": "items"}),
}


def chain_lists(n: int = N_TRACKS) -> ItemLists:
    """Each track's neighbours: the next three tracks (wrapping)."""
    return ItemLists.from_rows((t, [(t + 1) % n, (t + 2) % n, (t + 3) % n]) for t in range(n))


@pytest.fixture
def served(make_app, tmp_path, redis_url, redis_client):
    """serve(arm, steps, user=None) -> the `next` events the service logged for those steps
    ((track, time) each, one session of a user of `arm` with a list unless `user` is given)."""
    path = tmp_path / "experiments.yml"
    arms = [{"name": a, "recommender": r, "params": p} for a, (r, p) in ARMS.items()]
    path.write_text(yaml.safe_dump({"route": "P", "experiments": [{"name": "P", "arms": arms}]}))
    write_lists(redis_url, range(500))
    deploy(redis_client, [], "items", prefix=PREFIX, items=chain_lists())
    app = make_app(EXPERIMENTS=str(path), POINTER_CACHE_SECONDS=0)
    client = app.test_client()
    assert client.get("/ready").status_code == 200
    assign = app.extensions["botify"].experiments.assign

    def serve(arm: str, steps, user: int | None = None) -> list[dict]:
        if user is None:
            user = next(u for u in range(500) if assign(u)["P"] == arm)
        before = len(read_events(log_dir(app)))
        for seed, (track, time) in enumerate(steps):
            answer = client.post(
                f"/next/{user}", json={"track": track, "time": time},
                headers={"X-Botify-Seed": str(seed)},
            )  # fmt: skip
            assert answer.status_code == 200, answer.json
        client.post(f"/last/{user}", json={"track": 0, "time": 1.0})
        events = read_events(log_dir(app))[before:]
        assert events[-1]["message"] == "last" and events[-1]["propensity"] is None
        return [e for e in events if e["message"] == "next"]

    serve.assign = assign  # type: ignore[attr-defined]
    return serve


def propensities(events: list[dict]) -> list[float]:
    return [e["propensity"] for e in events]


def test_uniform_arms_log_one_over_their_pool(served):
    steps = [(3, 1.0), (57, 0.5), (120, 0.0)]
    assert propensities(served("random", steps)) == [1 / N_TRACKS] * 3
    assert propensities(served("sticky", steps)) == [1 / TRACKS_PER_ARTIST] * 3
    # 2026: the artist's other tracks; mixed: the whole catalog after a play shorter than 0.3
    assert propensities(served("sticky26", steps)) == [1 / (TRACKS_PER_ARTIST - 1)] * 3
    mixed = served("mixed", [(3, 1.0), (3, 0.3), (3, 0.29), (3, 0.0)])
    assert propensities(mixed) == [1 / 9, 1 / 9, 1 / N_TRACKS, 1 / N_TRACKS]
    assert propensities(served("toppop", steps)) == [1 / 20] * 3


def test_list_arms_log_one_over_the_list_or_one_when_deterministic(served):
    steps = [(3, 1.0), (57, 0.5), (120, 0.05)]
    indexed = served("indexed", steps)
    assert propensities(indexed) == [1 / 100] * 3  # uniform over the user's 100 tracks
    assert not any(e["fallback"] for e in indexed)
    for arm in ("sorted", "cooler", "session"):
        events = served(arm, steps)
        assert propensities(events) == [1.0] * 3, arm
        assert not any(e["fallback"] for e in events)


def test_a_list_arm_without_a_list_logs_its_fallbacks_propensity(served):
    user = next(u for u in range(500, 5000) if served.assign(u)["P"] == "indexed")
    events = served("indexed", [(3, 1.0), (57, 0.5)], user=user)
    assert [(e["fallback"], e["propensity"]) for e in events] == [(True, 0.1), (True, 0.1)]


def test_item_list_arms_log_the_chance_of_their_draw(served):
    contextual = served("contextual", [(3, 1.0), (57, 0.5)])
    assert propensities(contextual) == [1 / 3, 1 / 3]  # a random one of the track's 3 neighbours
    # i2i: history [50 (1.0)] -> only anchor 50 -> 51, certain; then history [50 (1.0), 80 (0.5)]:
    # anchor 50 (weight 1.0) serves 51, anchor 80 (weight 0.5) serves 81
    first, second = served("i2i", [(50, 1.0), (80, 0.5)])
    assert (first["recommendation"], first["propensity"]) == (51, 1.0)
    expected = {51: 1.0 / 1.5, 81: 0.5 / 1.5}
    assert second["propensity"] == pytest.approx(expected[second["recommendation"]], rel=1e-12)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_pick_in_list_answers_the_share_of_the_list_that_is_the_track(kind, redis_client):
    # user 4: 256 packs as 00 01 00 00, so 0's bytes also appear unaligned (offsets 2, 3)
    lists = {1: [5, 5, 6, 7], 2: [9], 3: [], 4: [256, 0]}
    if kind == "memory":
        state = MemoryState({"core": {u: np.asarray(t) for u, t in lists.items()}})
    else:
        top = TopLists(redis_client, "core", prefix="pick")
        top.activate(top.write(lists.items())[0])
        state = RedisState(redis_client, Settings(key_prefix="pick"))
    ops = [PickInList("core", 1, d) for d in range(5)]
    ops += [PickInList("core", u, 7) for u in (2, 3, 5)] + [
        PickInList("core", 4, d) for d in (1, 2)
    ]
    assert state.run(ops) == [
        Picked(5, 4, 2), Picked(5, 4, 2), Picked(6, 4, 1), Picked(7, 4, 1), Picked(5, 4, 2),
        Picked(9, 1, 1), None, None, Picked(0, 2, 1), Picked(256, 2, 1),
    ]  # fmt: skip
    # asked for the whole list (an exploration arm's Indexed side): the same pick, and the list
    whole = state.run([PickInList("core", u, 2, whole=True) for u in (1, 4, 3)])
    assert [w.tracks.tolist() for w in whole[:2]] == [[5, 5, 6, 7], [256, 0]]
    assert [w[:3] for w in whole[:2]] == [(6, 4, 1), (256, 2, 1)] and whole[2] is None


# -- every registered recommender: the logged propensity is the frequency of its own draws ----------
DRAWS = 3000


PARAMS = {  # what each recommender needs to answer from its own data here
    "indexed": {"lists": "core", "whole_list": True},  # the same draws, and it tells its chance
    "sorted_indexed": {"lists": "core"},
    "cooler_indexed": {"lists": "core"},
    "session_core": {"lists": "core"},
    "i2i": {"lists": "items"},
    "contextual": {"lists": "items"},
    "toppop": {"k": 20},
    "mixture": {  # an exploration arm over sides of each kind that tells its chance
        "sides": [
            {"name": "sorted_indexed", "lists": "core"},
            {"name": "sticky_artist"},
            {"name": "toppop", "k": 20},
            {"name": "contextual", "lists": "items"},
            {"name": "session_core", "lists": "core"},
            {"name": "indexed", "lists": "core"},
        ],
        "weights": [1, 2, 1, 1, 1, 1],
    },
}


def built(name: str, tracks_json):
    """`name` with its PARAMS, on a context with a model for `core` and item lists `items`."""
    catalog = Catalog.from_tracks_json(tracks_json)
    embeddings = np.random.default_rng(0).standard_normal((N_TRACKS, 4))
    models = MemoryModels(
        {"core": OnlineModel.from_arrays(np.arange(N_TRACKS), embeddings, catalog)}
    )
    ctx = Context(catalog, models=models, item_lists=MemoryItemLists({"items": chain_lists()}))
    return recommenders.build(name, ctx, **PARAMS.get(name, {}))


@pytest.mark.parametrize("name", recommenders.names())
@pytest.mark.parametrize("context", [(3, 1.0), (57, 0.1)])
def test_every_recommenders_propensity_is_the_frequency_of_its_draws(tracks_json, name, context):
    """Whatever a recommender is, the propensity it gives a track is the chance that it serves
    it: over many seeds of the same step (the same state before it), each served track's share
    of the draws lies within 5 standard errors of its propensity, a track always gets the same
    propensity, and the propensities of the tracks served sum to 1."""
    if name == "interleave":  # its propensity is exact only where the other side is
        pytest.skip("deterministic or picked the same track (tests/botify/test_interleave.py)")
    rec = built(name, tracks_json)
    track, time = context
    counts: Counter[int] = Counter()
    logged: dict[int, set[float]] = defaultdict(set)
    for seed in range(DRAWS):
        state = MemoryState({"core": {1: np.asarray(user_list(1))}})
        # a history of two plays for the arms that keep one (i2i's anchors weigh 1.0 and 0.5)
        state.run(list(rec.ops(Step("next", 1, 120, 0.5, seed))))
        step = Step("next", 1, track, time, seed)
        answer = rec.recommend(step, state.run(list(rec.ops(step))))
        assert not answer.fallback, name
        counts[answer.track] += 1
        logged[answer.track].add(answer.propensity)
    assert all(len(p) == 1 for p in logged.values()), (name, logged)
    chance = {t: next(iter(p)) for t, p in logged.items()}
    assert math.isclose(sum(chance.values()), 1.0, rel_tol=1e-9) or len(chance) < DRAWS / 20
    for t, n in counts.items():
        p = chance[t]
        assert 0 < p <= 1
        assert abs(n / DRAWS - p) <= 5 * math.sqrt(p * (1 - p) / DRAWS) + 1e-12, (name, t, n, p)


def _answer(name: str, tracks_json, seed: int, track: int, time: float, state_list=True):
    rec = built(name, tracks_json)
    state = MemoryState({"core": {1: np.asarray(user_list(1))}} if state_list else {})
    state.run(list(rec.ops(Step("next", 1, 120, 0.5, seed))))
    step = Step("next", 1, track, time, seed)
    results = state.run(list(rec.ops(step)))
    answer = rec.recommend(step, results)
    # `chance` sees the step as `recommend` did: the same ops' draws first
    again = Step("next", 1, track, time, seed)
    rec.ops(again)
    return rec, again, results, answer, rec.ctx.catalog


@pytest.mark.parametrize("name", recommenders.names())
@pytest.mark.parametrize("state_list", [True, False])  # False: a list arm on its fallback
def test_chance_of_every_track_sums_to_one_and_matches_the_propensity(
    tracks_json, name, state_list
):
    """A recommender that tells its chance gives the track it served its logged propensity, and
    its chances of all the catalog's tracks sum to 1: what an exploration arm (`mixture`) logs
    for another side's track is a probability distribution, not a guess."""
    if not built(name, tracks_json).tells_chance:
        pytest.skip(f"{name} does not tell its chance (a mixture refuses it as a side)")
    for seed in (1, 2, 3):
        rec, step, results, answer, catalog = _answer(name, tracks_json, seed, 57, 0.1, state_list)
        chances = [rec.chance(step, results, answer, t) for t in range(len(catalog))]
        assert all(c is not None and 0.0 <= c <= 1.0 for c in chances), name
        assert math.isclose(chances[answer.track], answer.propensity, rel_tol=1e-12), name
        assert math.isclose(sum(chances), 1.0, rel_tol=1e-9), (name, sum(chances))


def test_mixture_refuses_a_side_that_cannot_tell_its_chance(tracks_json):
    ctx = Context(Catalog.from_tracks_json(tracks_json))
    with pytest.raises(ValueError, match="i2i cannot tell its chance"):
        recommenders.build("mixture", ctx, sides=[{"name": "i2i"}, {"name": "random"}])
    # an Indexed side reads its whole list, so it can tell
    mixed = recommenders.build("mixture", ctx, sides=[{"name": "indexed"}, {"name": "random"}])
    assert mixed.sides[0].whole_list and mixed.sides[0].tells_chance
    with pytest.raises(ValueError, match="weights"):
        recommenders.build("mixture", ctx, sides=[{"name": "random"}] * 2, weights=[1, 0])
    with pytest.raises(ValueError, match="at least two"):
        recommenders.build("mixture", ctx, sides=[{"name": "random"}])
