"""The batch engine: same listener as the Env, sessions that do not depend on the batch, the
oracle's exactness, and the calibration's direction."""

from __future__ import annotations

import numpy as np
import pytest

from sim.batch import BatchSimulator, Draws, OraclePolicy, RandomPolicy, run_key
from sim.calibrate import agent_names, effect, run_agents
from sim.env import RecEnv
from sim.transport import InProcess, ServicePolicy
from sim.user_model import oracle_choice
from tests.sim.conftest import OraclePick, play, random_pick


def env_sessions(population, pick, sessions, seed):
    """The gymnasium env stepped one session at a time: the listener's reference."""
    env = RecEnv(population)
    out = [play(env, pick, seed)] + [play(env, pick) for _ in range(sessions - 1)]
    return np.array([t for t, _ in out]), np.array([n for _, n in out])


def z_score(a, b):
    return (a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))


@pytest.mark.parametrize(
    ("policy", "pick", "sessions"),
    [(RandomPolicy, lambda: random_pick, 3000), (OraclePolicy, OraclePick, 300)],
)
def test_batch_matches_env_in_distribution(small_population, policy, pick, sessions):
    times, tracks = env_sessions(small_population, pick(), sessions, seed=5)
    result = BatchSimulator(small_population, run_key(5), batch_size=256).run(policy(), sessions)
    assert len(result.time) == sessions
    assert abs(z_score(result.time, times)) < 4
    assert abs(z_score(result.tracks.astype(float), tracks.astype(float))) < 4


@pytest.mark.parametrize("policy", [RandomPolicy, OraclePolicy, "sticky_artist"])
def test_a_session_does_not_depend_on_the_batch(small_population, small_world, policy):
    """Session i is the same (user, time, tracks) with 1, 7 or 300 sessions live at once."""

    def make():
        if isinstance(policy, str):
            return ServicePolicy(InProcess.build(small_world.catalog, policy))
        return policy()

    sessions = 80 if policy is OraclePolicy else 400  # the oracle's sessions are long
    runs = [
        BatchSimulator(small_population, run_key(3), batch_size=b).run(make(), sessions).in_order()
        for b in (1, 7, 300)
    ]
    for other in runs[1:]:
        assert np.array_equal(runs[0].user, other.user)
        assert np.array_equal(runs[0].time, other.time)
        assert np.array_equal(runs[0].tracks, other.tracks)
    assert np.array_equal(runs[0].index, np.arange(sessions))


def test_a_user_never_has_two_live_sessions(small_population):
    users = np.array([3, 4])  # two users, many rows: most sessions must wait for their user

    class Watch:
        def step(self, sim, act, end):
            live = sim.user[act]
            assert len(set(live.tolist())) == len(live)
            assert not set(live.tolist()) & set(sim.user[end].tolist())
            return sim.policy_integers(act, sim.pop.n_tracks)

    result = BatchSimulator(small_population, run_key(1), 64, users=users).run(Watch(), 50)
    assert len(result.user) == 50 and set(result.user.tolist()) == {3, 4}


def test_draws_are_uniform_and_distinct_per_purpose():
    keys = Draws(run_key(1)).session_keys(np.arange(20_000))
    u = Draws.uniform(keys, 3, 4)
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    ints = Draws.integers(keys, 0, 1, 10)
    assert np.bincount(ints, minlength=10).min() > 1800
    assert not np.array_equal(Draws.bits(keys, 0, 1), Draws.bits(keys, 0, 2))
    assert not np.array_equal(Draws.bits(keys, 0, 1), Draws.bits(keys, 1, 1))


def test_oracle_picks_equal_the_brute_force_argmax(small_population):
    """Every batch-oracle pick equals the argmax of expected time over all tracks."""
    pop = small_population
    checked = 0

    class Checking(OraclePolicy):
        def step(self, sim, act, end):
            nonlocal checked
            choice = super().step(sim, act, end)
            for row, track in zip(act, choice, strict=True):
                n = sim.length[row]
                artists, plays = np.unique(sim.played_artist[row, :n], return_counts=True)
                scores = pop.index.scores(sim.anchor[row]).astype(np.float64)
                best = oracle_choice(
                    pop,
                    sim.user[row],
                    scores,
                    sim.played[row, :n],
                    dict(zip(artists, plays, strict=True)),
                )
                assert track == best
                checked += 1
            return choice

    BatchSimulator(pop, run_key(9), batch_size=8).run(Checking(), sessions=16)
    assert checked > 100


def test_agents_derive_from_the_registry():
    names = agent_names()
    assert {"random", "sticky_artist", "toppop"} <= set(names) and names[-1] == "oracle"
    assert "sorted_indexed" not in names  # list arms need lists: not calibrated in-process


def test_sessions_reproducible_for_a_seed(small_population, small_world):
    runs = [
        run_agents(small_world, small_population, 300, seed=s, agents=("random", "sticky_artist"))
        for s in (1, 1, 2)
    ]
    same = [np.array_equal(runs[0][a].time, runs[1][a].time) for a in ("random", "sticky_artist")]
    assert all(same)
    assert not np.array_equal(runs[0]["random"].time, runs[2]["random"].time)
    # every agent gets the same sessions: same users in the same order
    assert np.array_equal(
        runs[0]["random"].in_order().user, runs[0]["sticky_artist"].in_order().user
    )


def test_sticky_beats_random_and_oracle_beats_all(small_world, small_population):
    for seed in (1, 2):
        results = run_agents(small_world, small_population, 2000, seed=seed, oracle_sessions=200)
        sticky = effect(results["sticky_artist"].time, results["random"].time)
        assert sticky.low > 0
        oracle = results["oracle"].time.mean()
        for name in ("random", "sticky_artist", "toppop"):
            assert oracle > 1.5 * results[name].time.mean()
