"""The REST contract (DESIGN.md), the course simulator's request sequence, and configuration."""

from __future__ import annotations

import json

import pytest

from botify.app import create_app
from botify.experiments import Experiments
from botify.settings import Settings
from tests.conftest import PREFIX

from .conftest import EXPERIMENTS, N_TRACKS, artist_of, log_dir, read_events, user_list

ROUTE = Experiments.from_file(EXPERIMENTS)


def first_user(arm: str, start: int = 0) -> int:
    return next(u for u in range(start, 10_000) if ROUTE.routing.assign(u).name == arm)


def test_hello_health_and_track(client):
    assert client.get("/").json["status"] == "alive"
    assert client.get("/health").json["status"] == "ok"
    assert client.get("/track/13").json == {
        "track": 13,
        "artist": "artist 1",
        "title": "song 13",
        "genre": "jazz",
    }
    missing = client.get(f"/track/{N_TRACKS}")
    assert missing.status_code == 404 and missing.json == {"message": "track not found"}


def test_unknown_path_and_method_answer_json(client):
    assert client.get("/nowhere").status_code == 404
    assert "message" in client.get("/nowhere").json
    wrong = client.get("/next/1")
    assert wrong.status_code == 405 and "message" in wrong.json


def test_next_and_last_contract(client, core_lists, app):
    user = first_user("T1")
    answer = client.post(f"/next/{user}", json={"track": 5, "time": 0.5})
    assert answer.status_code == 200
    mine = user_list(user)  # the seed's rule: after 5 if 5 is in the list, else the top
    assert answer.json == {"user": user, "track": mine[mine.index(5) + 1] if 5 in mine else mine[0]}
    last = client.post(f"/last/{user}", json={"track": answer.json["track"], "time": 0.3})
    assert last.status_code == 200 and last.json == {"user": user}

    nxt, end = read_events(log_dir(app))
    assert set(nxt) == {
        "message", "timestamp", "user", "track", "time", "latency",
        "recommendation", "experiments", "replica", "fallback", "propensity", "team",
    }  # fmt: skip
    assert (nxt["message"], nxt["user"], nxt["track"], nxt["time"]) == ("next", user, 5, 0.5)
    assert nxt["recommendation"] == answer.json["track"]
    assert nxt["experiments"] == {"AB": "T1"} and nxt["replica"] == "test-1"
    assert nxt["fallback"] is False and 0 < nxt["latency"] < 1
    assert nxt["team"] is None  # set only by an interleaving arm
    assert isinstance(nxt["timestamp"], int) and nxt["timestamp"] > 1.7e12
    assert nxt["propensity"] == 1.0  # the seed's list walk is deterministic
    assert (end["message"], end["recommendation"], end["time"]) == ("last", None, 0.3)
    assert end["propensity"] is None


def test_course_simulator_request_sequence(client, core_lists, app):
    """The course's RemoteRecommender: pycurl POSTs with Accept and Content-Type JSON headers,
    body json.dumps({"track", "time"}); time 1.0 on the first step; /last with the final reward."""
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    user, reward = first_user("T2"), 1.0
    track = next(t for t in range(N_TRACKS) if t not in user_list(user))  # starts at the top
    seen = []
    for step in range(4):
        body = json.dumps({"track": int(track), "time": reward})
        answer = client.post(f"/next/{user}", data=body, headers=headers)
        assert answer.status_code == 200
        track, reward = answer.json["track"], [0.9, 0.05, 0.7, 0.0][step]
        seen.append(track)
    body = json.dumps({"track": int(track), "time": reward})
    assert client.post(f"/last/{user}", data=body, headers=headers).json == {"user": user}
    assert seen == user_list(user)[:4]
    events = read_events(log_dir(app))
    assert [e["message"] for e in events] == ["next"] * 4 + ["last"]
    assert [e["time"] for e in events] == [1.0, 0.9, 0.05, 0.7, 0.0]


def test_sticky_artist_arm_needs_no_lists(client):
    user = first_user("C")
    for track in (0, 57, 199):
        answer = client.post(f"/next/{user}", json={"track": track, "time": 1})
        assert answer.status_code == 200
        assert artist_of(answer.json["track"]) == artist_of(track)


def test_experiments_endpoints(client):
    config = client.get("/experiments").json
    assert config["route"] == "AB"
    assert [a["name"] for a in config["experiments"][0]["arms"]] == ["C", "T1", "T2", "T3", "T4"]
    user = first_user("T3")
    mine = client.get(f"/experiments/{user}").json
    assert mine["experiments"] == {"AB": "T3"}
    assert mine["route"] == {"experiment": "AB", "arm": "T3", "recommender": "indexed"}


def test_readiness_needs_redis_and_lists(make_app, redis_client, tmp_path):
    client = make_app().test_client()
    waiting = client.get("/ready")
    assert waiting.status_code == 503
    assert waiting.json["reasons"] == ["list set 'core' has no active version"]
    assert redis_client.hget(f"{PREFIX}:catalog", "tracks") == str(N_TRACKS).encode()  # refilled
    catalog_only = tmp_path / "catalog-only.yml"  # arms that need no lists: ready without them
    catalog_only.write_text("route: ONE\nexperiments:\n  - name: ONE\n    arms:\n"
                            "      - {name: C, recommender: sticky_artist}\n"
                            "      - {name: T1, recommender: toppop}\n")  # fmt: skip
    collect = make_app(EXPERIMENTS=str(catalog_only))
    assert collect.test_client().get("/ready").json["ready"] is True
    unreachable = make_app(REDIS_URL="redis://127.0.0.1:1/0").test_client().get("/ready")
    assert unreachable.status_code == 503 and "Redis unavailable" in unreachable.json["reasons"][0]


def test_readiness_ok_with_lists(client, core_lists):
    ready = client.get("/ready")
    assert ready.status_code == 200, ready.json
    assert ready.json["lists"] == {"core": {"active": core_lists, "users": 500, "items": 0}}


def test_config_precedence(tmp_path, monkeypatch, tracks_json, redis_url):
    config_file = tmp_path / "botify.yml"
    config_file.write_text(
        f"BOTIFY_REPLICA: from-file\nCATALOG: {tracks_json}\nMAX_USER: 1000\nLOG_DIR: {tmp_path}\n"
    )
    monkeypatch.setenv("BOTIFY_CONFIG", str(config_file))
    monkeypatch.setenv("BOTIFY_REDIS_URL", redis_url)
    monkeypatch.setenv("BOTIFY_MAX_USER", "2000")
    settings = create_app().extensions["botify"].settings
    assert settings.replica == "from-file" and settings.max_user == 2000
    assert settings.experiments == "config/experiments.yml"  # default
    monkeypatch.setenv("BOTIFY_REPLICA", "1")  # a name, however it is spelled
    assert create_app().extensions["botify"].settings.replica == "1"
    assert create_app({"BOTIFY_MAX_USER": 5}).extensions["botify"].max_user == 5


def test_settings_are_typed_and_checked(tmp_path, monkeypatch):
    assert Settings.load(environ={"BOTIFY_SESSION_TTL": "60"}).session_ttl == 60
    assert Settings.load(environ={"BOTIFY_REDIS_PASSWORD": ""}).redis_password is None
    assert Settings.load({"REDIS_RETRY_AFTER": 1}).redis_retry_after == 1.0
    assert Settings.load({"replica": 7}).replica == "7"
    with pytest.raises(ValueError, match="BOTIFY_SESSION_TTL='soon': not an integer"):
        Settings.load(environ={"BOTIFY_SESSION_TTL": "soon"})
    with pytest.raises(ValueError, match="unknown setting"):
        Settings.load({"KEY_PERFIX": "lab"})  # a typo is an error, not a silent default
    with pytest.raises(ValueError, match="SESSION_TTL: 2.5 is not an integer"):
        Settings.load({"SESSION_TTL": 2.5})
    with pytest.raises(ValueError, match="key_prefix"):
        Settings(key_prefix="{lab}")  # would break every key's hash tag
    config_file = tmp_path / "botify.json"
    config_file.write_text('{"KEY_PREFIX": "from-file", "SESSION_TTL": 99}')
    environ = {"BOTIFY_CONFIG": str(config_file), "BOTIFY_SESSION_TTL": "7", "BOTIFY_URL": "x"}
    loaded = Settings.load(environ=environ)  # BOTIFY_URL is the simulator's, not a setting
    assert (loaded.key_prefix, loaded.session_ttl) == ("from-file", 7)
    assert "secret" not in repr(Settings(redis_password="secret"))


def test_missing_catalog_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="BOTIFY_CATALOG"):
        create_app({"CATALOG": str(tmp_path / "none.json")})


def test_cli_commands(app, redis_client):
    runner = app.test_cli_runner()
    loaded = runner.invoke(args=["load-catalog"])
    assert loaded.exit_code == 0 and json.loads(loaded.output)["tracks"] == N_TRACKS
    assert redis_client.hget(f"{PREFIX}:catalog", "tracks") == str(N_TRACKS).encode()
    ready = runner.invoke(args=["ready"])
    assert ready.exit_code == 1 and '"ready": false' in ready.output
    user = first_user("T2")
    assigned = runner.invoke(args=["assign", str(user)])
    assert json.loads(assigned.output) == {"user": user, "experiments": {"AB": "T2"}}


@pytest.mark.parametrize("path", ["/", "/next/1", "/batch/01", "/ready", "/nope"])
def test_options_is_not_served(client, path):
    answer = client.open(path, method="OPTIONS")
    assert answer.status_code == (404 if path == "/nope" else 405)
    assert answer.is_json and answer.json["message"]
    if answer.status_code == 405:
        assert "OPTIONS" not in answer.headers["Allow"]
