"""Configuration of the service: defaults, then a file, then `BOTIFY_*` variables, then a mapping.

Keys live in `app.config` without the `BOTIFY_` prefix (`BOTIFY_REDIS_URL` -> `REDIS_URL`), which
is what `Flask.config.from_prefixed_env("BOTIFY")` produces. A file (`BOTIFY_CONFIG`, JSON or YAML)
and the test mapping may spell keys either way.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from botify.step import MAX_BATCH_STEPS

PREFIX = "BOTIFY_"

DEFAULTS: dict[str, Any] = {
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "REDIS_PASSWORD": None,  # used when REDIS_URL has none; never printed (keep it out of URLs)
    "CATALOG": "data/world/tracks.json",  # tracks.json of the world
    "EXPERIMENTS": "config/experiments.yml",
    "LOG_DIR": "log",  # this replica's event log folder
    "REPLICA": socket.gethostname(),  # written into every event
    "LOG_MAX_BYTES": 64 * 2**20,  # rotate an events file past this size
    "MAX_BODY_BYTES": 4096,  # a /next body is ~30 bytes; anything bigger is abuse
    "MAX_BATCH_STEPS": MAX_BATCH_STEPS,  # steps in one POST /batch/<shard>
    "MAX_BATCH_BYTES": 128 * 1024,  # a batch step is ~70 bytes: 1,024 of them fit with room
    "MAX_USER": 2**32 - 1,  # user ids are 0..MAX_USER (murmur3 hashes str(user))
    "REDIS_SOCKET_TIMEOUT": 0.25,  # seconds; a slow Redis must not stall a worker
    "REDIS_CONNECT_TIMEOUT": 0.1,
    "REDIS_RETRY_AFTER": 0.5,  # after a Redis error, serve the fallback this long before retrying
    "KEY_PREFIX": "botify",
    "CURSOR_TTL": 24 * 3600,  # a session never closed by /last forgets its cursor after this
    "SESSION_LENGTH": 50,  # tracks of the live session kept per user (newest)
    "SESSION_TTL": 3600,  # a live session never closed by /last is forgotten after this
    "HISTORY_LENGTH": 10,  # plays of the listening history across sessions (the course's 2026)
    "HISTORY_TTL": 30 * 24 * 3600,  # a history nobody adds to is forgotten after this
    "POINTER_CACHE_SECONDS": 1.0,  # how long a replica may use a cached active-list version
    "FALLBACK": "sticky_artist",  # catalog-only recommender used while Redis fails
}

# Keys whose value must stay a string even when the environment spells a number (`BOTIFY_REPLICA=1`
# is parsed as JSON by from_prefixed_env).
STRING_KEYS = (
    "REDIS_URL",
    "REDIS_PASSWORD",
    "CATALOG",
    "EXPERIMENTS",
    "LOG_DIR",
    "REPLICA",
    "FALLBACK",
    "KEY_PREFIX",
)


def unprefixed(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {(k[len(PREFIX) :] if k.startswith(PREFIX) else k): v for k, v in mapping.items()}


def read_file(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON or YAML mapping of settings."""
    text = Path(path).read_text(encoding="utf-8")
    data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of settings")
    return unprefixed(data)


def normalize(config: dict[str, Any]) -> None:
    """Coerce types that environment parsing may have changed."""
    for key in STRING_KEYS:
        if config.get(key) is not None:
            config[key] = str(config[key])
