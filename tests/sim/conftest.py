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
