from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from sim.env import RecEnv
from tests.sim.conftest import OraclePick, play, random_pick


def rollout(env, pick, seed, sessions=30):
    out = [play(env, pick, seed)]
    out += [play(env, pick) for _ in range(sessions - 1)]
    return out, list(env.played)


def test_check_env(small_population):
    check_env(RecEnv(small_population), skip_render_check=True)


@pytest.mark.parametrize("agent", ["random", "oracle"])
def test_same_seed_same_sessions(small_world, small_population, agent):
    def make(env):
        return random_pick if agent == "random" else OraclePick()

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
    oracle = [play(env, OraclePick(), seed=s) for s in range(40)]
    random = [play(env, random_pick, seed=s) for s in range(40)]
    assert np.mean([t for t, _ in oracle]) > 2 * np.mean([t for t, _ in random])
    env.reset(seed=1)
    pick = OraclePick()
    for _ in range(20):
        track = pick(env)
        assert track not in env.played
        env.step(track)
