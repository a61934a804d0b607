"""The interleaving arm: team-draft balance, the sides' picks, the turn on both backends, and the
arm through the real service (a test app on the real Redis) down to the exported `team` column
and `python -m script.ab interleave`."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import redis
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from botify import recommenders
from botify.catalog import Catalog
from botify.recommenders import Context
from botify.recommenders.interleave import side_step
from botify.settings import Settings
from botify.step import Step
from botify.user_state import MemoryState, RedisState, ResetTurn, TakeTurn, Turn
from tests.botify.conftest import N_TRACKS, artist_of, log_dir, read_events, user_list
from tests.conftest import PREFIX

T1_VS_C = {"a": {"name": "sorted_indexed", "lists": "core"}, "b": {"name": "sticky_artist"}}


@pytest.fixture(scope="module")
def catalog(tracks_json) -> Catalog:
    return Catalog.from_tracks_json(tracks_json)


def lists_for(users) -> dict:
    return {"core": {u: np.asarray(user_list(u)) for u in users}}


TURNS: list[Turn] = []  # the turn of every step served by `serve`, in order


def serve(rec, state, step: Step):
    results = state.run(list(rec.ops(step)))
    if results and isinstance(results[-1], Turn):
        TURNS.append(results[-1])
    rec.ctx.rng.serve(step)
    try:
        return rec.recommend(step, results)
    finally:
        rec.ctx.rng.serve(None)


def run_session(rec, state, user: int, seed: int, steps: int) -> list:
    """One session's answers (each step fed the previous answer), then /last."""
    answers, prev = [], user % N_TRACKS
    TURNS.clear()
    for i in range(steps):
        answer = serve(rec, state, Step("next", user, prev, 0.5, seed * 1000 + i))
        answers.append(answer)
        prev = answer.track
    state.run(list(rec.end_ops(Step("last", user, prev, 0.3, 0))))
    rec.on_session_end(user)
    return answers


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32), st.lists(st.integers(1, 21), min_size=1, max_size=4))
def test_team_draft_balance_within_every_session(catalog, seed, lengths):
    """Each pair of a session's steps gives one step to each side: after an even number of steps
    both sides served equally often, after an odd one a side leads by one; a new session starts
    a new count (the turn is cleared at /last)."""
    rec = recommenders.build("interleave", Context(catalog), **T1_VS_C)
    state = MemoryState(lists_for(range(10)))
    for n, length in enumerate(lengths):
        teams = [a.team for a in run_session(rec, state, user=3, seed=seed + n, steps=length)]
        assert [t.position for t in TURNS] == list(range(length))  # a new session counts from 0
        sides = ["ab"[t.side] for t in TURNS]
        for i in range(0, length - 1, 2):
            assert sorted(sides[i : i + 2]) == ["a", "b"], (i, sides)
        # the logged team is the side whose turn it was, or "both" (then credited to neither)
        assert all(team in (side, "both") for team, side in zip(teams, sides, strict=True))
        assert state.turns == {}  # cleared at /last


def test_the_pairs_opener_is_a_fair_seeded_coin(catalog):
    rec = recommenders.build("interleave", Context(catalog), **T1_VS_C)
    state = MemoryState(lists_for(range(10)))
    openers = [run_session(rec, state, 1, seed, 2)[0].team for seed in range(400)]
    again = [run_session(rec, state, 1, seed, 2)[0].team for seed in range(400)]
    assert openers == again  # seeded: the same seeds, the same sides
    share = openers.count("a") / len(openers)
    assert 0.4 < share < 0.6  # 400 fair coins: outside this with probability < 1e-4


def test_each_side_answers_as_it_would_alone_on_its_own_stream(catalog):
    rec = recommenders.build("interleave", Context(catalog), **T1_VS_C)
    state = MemoryState(lists_for(range(10)))
    sticky = recommenders.build("sticky_artist", Context(catalog))
    for seed in range(50):
        step = Step("next", 2, 5, 0.5, seed)
        answer = serve(rec, state, step)
        if answer.team == "b":  # b's pick is what sticky_artist answers on b's stream
            assert answer.track == serve(sticky, MemoryState(), side_step(step, 1)).track
            assert artist_of(answer.track) == artist_of(5)
        elif answer.team == "a":  # sorted_indexed: 5 is not in user 2's list -> its top
            assert answer.track == user_list(2)[0]
        state.run([ResetTurn(rec.scope, 2)])


def test_both_sides_picking_the_same_track_is_credited_to_neither(catalog):
    same = {"a": {"name": "sorted_indexed"}, "b": {"name": "sorted_indexed"}}
    rec = recommenders.build("interleave", Context(catalog), **same)
    teams = {a.team for a in run_session(rec, MemoryState(lists_for([4])), 4, 9, 10)}
    assert teams == {"both"}


def test_a_side_without_its_data_marks_every_step_fallback(catalog):
    rec = recommenders.build("interleave", Context(catalog), **T1_VS_C)
    answers = run_session(rec, MemoryState(), 5, 1, 6)  # no lists: a answers from its fallback
    assert all(a.fallback for a in answers)
    assert {a.team for a in answers} <= {"a", "b", "both"}


def test_bad_params_are_refused(catalog):
    ctx = Context(catalog)
    for params in ({"a": "sticky_artist"}, {"a": {"lists": "core"}},
                   {"a": {"name": "interleave"}}, {"a": {"name": "sticky_artist", "x": 1}}):  # fmt: skip
        with pytest.raises((ValueError, TypeError)):
            recommenders.build("interleave", ctx, **params)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["take", "reset"]), st.integers(0, 1)), max_size=30))
def test_the_turn_is_the_same_on_memory_and_redis(redis_server, ops):
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    backends = (MemoryState(), RedisState(client, Settings()))
    program = [TakeTurn("s", 7, coin) if kind == "take" else ResetTurn("s", 7)
               for kind, coin in ops]  # fmt: skip
    memory, remote = (b.run(program) for b in backends)
    assert memory == remote
    index = 0
    for op, result in zip(program, memory, strict=True):  # the count moves, /last clears it
        if isinstance(op, ResetTurn):
            index = 0
        else:
            assert isinstance(result, Turn) and result.position == index
            index += 1
    client.close()


def test_the_arm_through_the_real_service(make_app, redis_url, core_lists, tmp_path):
    """A test app routing every user to T1xC: the answers, the logged `team`, the turn key in
    Redis cleared at /last, then export and `python -m script.ab interleave` on those logs."""
    from script.ab.cli import main
    from script.export import export

    config = {
        "route": "IL",
        "experiments": [{"name": "IL", "arms": [
            {"name": "T1xC", "recommender": "interleave", "params": T1_VS_C}]}],
    }  # fmt: skip
    path = tmp_path / "experiments.yml"
    path.write_text(yaml.safe_dump(config))
    app = make_app(EXPERIMENTS=str(path))
    client = app.test_client()
    client_redis = redis.Redis.from_url(redis_url)
    served: dict[int, list] = {}
    for user in range(40):
        track = user
        for i in range(4 + user % 5):
            answer = client.post(f"/next/{user}", json={"track": track, "time": 0.1 * (i % 10)},
                                 headers={"X-Botify-Seed": str(user * 100 + i)})  # fmt: skip
            assert answer.status_code == 200
            track = answer.json["track"]
            served.setdefault(user, []).append(track)
        assert client_redis.exists(
            f"{PREFIX}:turn:interleave:sorted_indexed:sticky_artist:{{{user}}}"
        )
        assert client.post(f"/last/{user}", json={"track": track, "time": 0.5}).status_code == 200
        assert not client_redis.keys(f"{PREFIX}:turn:*{{{user}}}")
    client_redis.close()
    app.extensions["botify"].events.close()

    events = read_events(log_dir(app))
    nexts = [e for e in events if e["message"] == "next"]
    assert all(e["experiments"] == {"IL": "T1xC"} for e in events)
    teams_logged = [e["team"] for e in nexts]
    assert set(teams_logged) == {"a", "b", "both"}  # the lists are runs of one artist's tracks
    assert all(e["team"] is None for e in events if e["message"] == "last")
    for user, tracks in served.items():
        teams = [e["team"] for e in nexts if e["user"] == user]
        assert [e["recommendation"] for e in nexts if e["user"] == user] == tracks
        for i in range(0, len(teams) - 1, 2):  # a pair: one each ("both" is either's turn)
            pair = [t for t in teams[i : i + 2] if t != "both"]
            assert len(set(pair)) == len(pair)
        for prev, track, team in zip([user, *tracks], tracks, teams, strict=False):
            if team in ("a", "both"):  # sorted_indexed's pick: from the user's list
                assert track in user_list(user)
            if team in ("b", "both"):  # sticky_artist's: the previous track's artist
                assert artist_of(track) == artist_of(prev)

    export([log_dir(app)], tmp_path / "data")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["interleave", "--data", str(tmp_path / "data"), "--experiment", "IL",
                     "--arm", "T1xC", "--json"])  # fmt: skip
    assert code == 0
    result = json.loads(buffer.getvalue().strip().splitlines()[-1])
    # every step but the session's last /next is followed by the next /next reporting its track;
    # the last /next's track is reported by /last: every a or b step is credited, "both" never
    for side in ("a", "b"):
        assert result["sides"][side]["steps"] == teams_logged.count(side)
    assert result["both_share"] == pytest.approx(teams_logged.count("both") / len(nexts))
    assert result["sessions"] == 40
    assert result["preference"]["user"]["n"] == 40
    buffer = io.StringIO()  # the experiment's one interleaving arm, found without --arm
    with contextlib.redirect_stdout(buffer):
        assert main(["interleave", "--data", str(tmp_path / "data"), "--experiment", "IL",
                     "--json"]) == 0  # fmt: skip
    assert json.loads(buffer.getvalue().strip().splitlines()[-1]) == result


def test_propensity_is_the_mean_of_the_sides_chances_exact_for_deterministic_sides(catalog):
    """Two deterministic sides: the served track's chance is 1/2 when their picks differ (the
    coin), 1 when they agree; over many seeds each pick is served half the time."""
    other = {"alt": {3: np.asarray(user_list(50))}}
    two = {"a": {"name": "sorted_indexed", "lists": "core"},
           "b": {"name": "sorted_indexed", "lists": "alt"}}  # fmt: skip
    rec = recommenders.build("interleave", Context(catalog), **two)
    served = []
    for seed in range(2000):
        state = MemoryState({**lists_for([3]), **other})
        answer = serve(rec, state, Step("next", 3, 130, 0.5, seed))  # 130: in no list
        assert answer.propensity == 0.5
        served.append(answer.track)
    share = served.count(user_list(3)[0]) / len(served)
    assert set(served) == {user_list(3)[0], user_list(50)[0]}
    assert abs(share - 0.5) <= 5 * (0.25 / len(served)) ** 0.5
    same = {"a": two["a"], "b": {"name": "cooler_indexed", "lists": "core"}}
    rec = recommenders.build("interleave", Context(catalog), **same)
    answer = serve(rec, MemoryState(lists_for([3])), Step("next", 3, 0, 0.5, 1))
    assert (answer.team, answer.propensity) == ("both", 1.0)
