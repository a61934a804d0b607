"""The batch path against the Env (same listener), and the calibration's direction."""

from __future__ import annotations

import numpy as np
import pytest

from sim.agents import BaselineAgent, DummyAgent, OracleAgent, catalog_of, run_episode
from sim.batch import BatchSimulator, OraclePolicy, RandomPolicy
from sim.calibrate import effect, run_agents
from sim.env import RecEnv
from sim.user_model import oracle_choice


def env_sessions(population, agent_factory, sessions, seed):
    env = RecEnv(population)
    agent = agent_factory(env)
    out = [run_episode(env, agent, seed)] + [run_episode(env, agent) for _ in range(sessions - 1)]
    return np.array([t for t, _ in out]), np.array([n for _, n in out])


def z_score(a, b):
    return (a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))


@pytest.mark.parametrize(
    ("policy", "agent", "sessions"),
    [(RandomPolicy, DummyAgent, 3000), (OraclePolicy, OracleAgent, 300)],
)
def test_batch_matches_env_in_distribution(small_population, policy, agent, sessions):
    times, tracks = env_sessions(small_population, agent, sessions, seed=5)
    batch = BatchSimulator(small_population, np.random.default_rng(5), batch_size=256)
    result = batch.run(policy(), sessions)
    assert len(result.time) == sessions
    assert abs(z_score(result.time, times)) < 4
    assert abs(z_score(result.tracks.astype(float), tracks.astype(float))) < 4


def test_oracle_picks_equal_the_brute_force_argmax(small_population):
    """Every batch-oracle pick equals the argmax of expected time over all tracks."""
    pop = small_population
    batch = BatchSimulator(pop, np.random.default_rng(9), batch_size=8)
    checked = 0

    class Checking(OraclePolicy):
        def act(self, sim, live):
            nonlocal checked
            choice = super().act(sim, live)
            for row, track in zip(live, choice, strict=True):
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

    batch.run(Checking(), sessions=16)
    assert checked > 100


def test_sessions_reproducible_for_a_seed(small_population, small_world):
    runs = [
        run_agents(small_world, small_population, 300, seed=s, agents=("random", "sticky_artist"))
        for s in (1, 1, 2)
    ]
    same = [np.array_equal(runs[0][a].time, runs[1][a].time) for a in ("random", "sticky_artist")]
    assert all(same)
    assert not np.array_equal(runs[0]["random"].time, runs[2]["random"].time)


def test_sticky_beats_random_and_oracle_beats_all(small_world, small_population):
    for seed in (1, 2):
        results = run_agents(small_world, small_population, 3000, seed=seed)
        sticky = effect(results["sticky_artist"].time, results["random"].time)
        assert sticky.low > 0
        oracle = results["oracle"].time.mean()
        for name in ("random", "sticky_artist", "toppop"):
            assert oracle > 1.5 * results[name].time.mean()


def test_baseline_agent_uses_the_service_class(small_world, small_population):
    env = RecEnv(small_population)
    agent = BaselineAgent("sticky_artist", env, catalog_of(small_world))
    obs, _ = env.reset(seed=3)
    artist = small_population.artist_of
    for _ in range(10):
        track = agent.recommend(obs, 1.0)
        assert artist[track] == artist[obs["track"]]
        obs, *_ = env.step(track)
