"""A tiny world (200 tracks, 20 artists of 10 tracks) and a factory for apps on the test Redis."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import redis

from botify import online_model
from botify.app import create_app
from botify.toplists import TopLists
from tests.conftest import PREFIX

N_TRACKS = 200
TRACKS_PER_ARTIST = 10
REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "config" / "experiments.yml"


def artist_of(track: int) -> int:
    return track // TRACKS_PER_ARTIST


def user_list(user: int, k: int = 100) -> list[int]:
    """The known top-k list written for `user` in tests: a rotation of the catalog."""
    return [(user * 7 + i) % N_TRACKS for i in range(k)]


@pytest.fixture(scope="session")
def tracks_json(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("world") / "tracks.json"
    with open(path, "w", encoding="utf-8") as f:
        for t in range(N_TRACKS):
            row = {"track": t, "artist": f"artist {artist_of(t)}", "title": f"song {t}"}
            f.write(
                json.dumps({**row, "genre": ["rock", "jazz"][t % 2], "pop": 1 / (1 + t)}) + "\n"
            )
    return path


def service_config(redis_url: str, tracks_json: Path, log_dir: Path, replica: str) -> dict:
    """The service settings every test app or server needs (keys without the BOTIFY_ prefix)."""
    return {
        "REDIS_URL": redis_url,
        "CATALOG": str(tracks_json),
        "EXPERIMENTS": str(EXPERIMENTS),
        "LOG_DIR": str(log_dir),
        "REPLICA": replica,
    }


@pytest.fixture
def make_app(redis_url, tracks_json, tmp_path):
    """make_app(**config) -> a Flask app on the test Redis, logging under tmp_path/log."""

    def make(**config):
        base = service_config(redis_url, tracks_json, tmp_path / "log", "test-1")
        app = create_app({**base, **config})
        app.testing = True
        return app

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def write_lists(url: str, users, k: int = 100, name: str = "core") -> str:
    """Known lists for `users` and a small online model (the session arm's), one version, live."""
    client = redis.Redis.from_url(url)
    lists = TopLists(client, name, PREFIX)
    version, _ = lists.write((u, user_list(u, k)) for u in users)
    embeddings = np.random.default_rng(0).standard_normal((N_TRACKS, 4))
    fields = online_model.pack(np.arange(N_TRACKS), embeddings, {"kind": "test"})
    client.hset(online_model.model_key(PREFIX, name, version), mapping=fields)
    lists.activate(version)
    client.close()
    return version


@pytest.fixture
def core_lists(redis_url) -> str:
    """Lists for users 0..499 under set `core`, active. Returns the version."""
    return write_lists(redis_url, range(500))


def log_dir(app) -> Path:
    """The event log folder of a test app."""
    return Path(app.extensions["botify"].settings.log_dir)


def read_events(log_dir: Path) -> list[dict]:
    """Every event under log_dir (rotated files too); fails if a line is not valid JSON."""
    events = []
    for path in sorted(Path(log_dir).glob("events-*.jsonl*")):
        for line in path.read_text(encoding="utf-8").splitlines():
            events.append(json.loads(line))
    return events
