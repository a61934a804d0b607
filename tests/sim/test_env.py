from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from sim.agents import DummyAgent, OracleAgent, run_episode
from sim.env import RecEnv


def rollout(env, agent, seed, sessions=30):
    out = [run_episode(env, agent, seed)]
    out += [run_episode(env, agent) for _ in range(sessions - 1)]
    return out, list(env.played)


def test_check_env(small_population):
    check_env(RecEnv(small_population), skip_render_check=True)


@pytest.mark.parametrize("agent", ["dummy", "oracle"])
def test_same_seed_same_sessions(small_world, small_population, agent):
    def make(env):
        return DummyAgent(env) if agent == "dummy" else OracleAgent(env)

    env_a, env_b = RecEnv(small_population), RecEnv(small_population)
    a = rollout(env_a, make(env_a), seed=11)
    b = rollout(env_b, make(env_b), seed=11)
    c = rollout(env_b, make(env_b), seed=12)
    assert a == b
    assert a != c


def test_invalid_action_and_step_before_reset(small_population):
    env = RecEnv(small_population)
    with pytest.raises(RuntimeError):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(small_population.n_tracks)


def test_oracle_never_repeats_and_beats_random(small_world, small_population):
    env = RecEnv(small_population)
    oracle = [run_episode(env, OracleAgent(env), seed=s) for s in range(40)]
    dummy = [run_episode(env, DummyAgent(env), seed=s) for s in range(40)]
    assert np.mean([t for t, _ in oracle]) > 2 * np.mean([t for t, _ in dummy])
    env.reset(seed=1)
    agent = OracleAgent(env)
    for _ in range(20):
        track = agent.recommend({}, 1.0)
        assert track not in env.played
        env.step(track)
