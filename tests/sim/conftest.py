from __future__ import annotations

import pytest

from sim.user_model import Population
from sim.world import World, WorldShape, generate

SMALL = WorldShape(tracks=2000, users=200, dim=16)


@pytest.fixture(scope="session")
def small_world_dir(tmp_path_factory):
    return generate(7, SMALL).save(tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="session")
def small_world(small_world_dir) -> World:
    return World.load(small_world_dir)


@pytest.fixture(scope="session")
def small_population(small_world) -> Population:
    return Population(small_world)


# -- driving the gymnasium env (sim.env.RecEnv) one step at a time, as a gymnasium user does ------
def play(env, pick, seed=None) -> tuple[float, int]:
    """One session of `env` with `pick(env) -> track` choosing each step: (session time, tracks)."""
    env.reset(seed=seed)
    total, steps, done = 0.0, 0, False
    while not done:
        _, reward, terminated, truncated, _ = env.step(pick(env))
        total += reward
        steps += 1
        done = terminated or truncated
    return total, steps


def random_pick(env) -> int:
    """A uniformly random track from the env's own generator."""
    return int(env.np_random.integers(env.action_space.n))


class OraclePick:
    """The oracle (`sim.oracle.OracleSession`) on the env's hidden session."""

    def __init__(self) -> None:
        self.session = None
        self.seen = 0

    def __call__(self, env) -> int:
        from sim.oracle import OracleSession

        if self.session is None or len(env.played) == 1:  # a new session began
            self.session = OracleSession(env.population, env.user, env.anchor, env.played[0])
            self.seen = 1
        for track in env.played[self.seen :]:
            self.session.observe(track)
        self.seen = len(env.played)
        return self.session.choose()
