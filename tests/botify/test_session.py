"""The live session in Redis, online models that go live with their lists, and `session_core`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from botify import recommenders
from botify.catalog import Catalog
from botify.deploy import deploy
from botify.online_model import MemoryModels, OnlineModel, model_key
from botify.recommenders import Context
from botify.settings import Settings
from botify.step import Step
from botify.user_state import ClearSession, MemoryState, PushSession, RedisState
from tests.conftest import PREFIX

from .conftest import EXPERIMENTS, N_TRACKS, artist_of, log_dir, read_events

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def catalog(tracks_json) -> Catalog:
    return Catalog.from_tracks_json(tracks_json)


@pytest.fixture(params=["memory", "redis"])
def state(request, redis_client):
    if request.param == "memory":
        return MemoryState(session_length=4)
    return RedisState(redis_client, Settings(session_length=4, session_ttl=60))


def test_the_session_is_bounded_and_cleared(state):
    for i in range(6):
        (held,) = state.run([PushSession(7, 100 + i, i / 10)])
    assert held["track"].tolist() == [102, 103, 104, 105]  # the newest 4, oldest first
    assert np.allclose(held["time"], [0.2, 0.3, 0.4, 0.5])
    (other,) = state.run([PushSession(8, 1, 1.0)])
    assert other["track"].tolist() == [1]  # per user
    state.run([ClearSession(7)])
    (fresh,) = state.run([PushSession(7, 9, 1.0)])
    assert fresh["track"].tolist() == [9]


def test_the_session_key_has_the_users_hash_tag_and_a_ttl(redis_client):
    state = RedisState(redis_client, Settings(session_ttl=60))
    state.run([PushSession(12345, 3, 0.5)])
    (key,) = redis_client.keys(f"{PREFIX}:session:*")
    assert key == f"{PREFIX}:session:{{12345}}".encode()
    assert 0 < redis_client.ttl(key) <= 60


# -- session_core -----------------------------------------------------------------------------


def toy_model(catalog) -> OnlineModel:
    """Tracks 0..99 in 2-d: track t points at angle t degrees, so near ids are near in cosine."""
    tracks = np.arange(100)
    angles = np.radians(tracks.astype(float))
    embeddings = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return OnlineModel.from_arrays(tracks, embeddings, catalog)


def serve(rec, state, user: int, prev: int, played: float = 1.0, seed: int = 1):
    step = Step("next", user, prev, played, seed)
    answer = rec.recommend(step, state.run(list(rec.ops(step))))
    return answer.track, answer.fallback


def core_only(catalog, models, **params):
    """session_core with only the learned part (no genre or popularity prior)."""
    params = {"genre_weight": 0.0, "pop_weight": 0.0, "artist_discount": 1.0, **params}
    return recommenders.build("session_core", Context(catalog, models=models), **params)


def test_session_core_follows_the_session_and_never_repeats(catalog):
    rec = core_only(catalog, MemoryModels({"core": toy_model(catalog)}))
    state = MemoryState()
    heard = [40]
    for _ in range(8):
        track, fallback = serve(rec, state, 1, heard[-1])
        assert not fallback and track not in heard
        heard.append(track)
    assert all(30 <= t <= 50 for t in heard)  # it stays where the session is


def test_session_core_discounts_artists_already_heard(catalog):
    models = MemoryModels({"core": toy_model(catalog)})
    state = MemoryState()
    plain = core_only(catalog, models)
    assert artist_of(serve(plain, state, 1, 45)[0]) == artist_of(45)  # 44 or 46: same artist
    tired = core_only(catalog, models, artist_discount=0.5)
    first, _ = serve(tired, MemoryState(), 2, 45)
    assert artist_of(first) != artist_of(45)  # cos 0.9994 * 0.5 loses to a fresh artist's


def test_session_core_weighs_by_time_heard(catalog):
    rec = core_only(catalog, MemoryModels({"core": toy_model(catalog)}))
    state = MemoryState()
    serve(rec, state, 1, 10, played=1.0)
    track, _ = serve(rec, state, 1, 80, played=0.0)  # a skip: the session stays near 10
    assert track < 30


def test_genre_and_popularity_carry_the_session_past_the_model(catalog):
    """Track 151 is unknown to the model: the session's genre (151 is jazz: odd ids) and
    popularity (1 / (1 + id)) pick the most popular other jazz track of a fresh artist."""
    models = MemoryModels({"core": toy_model(catalog)})
    rec = recommenders.build("session_core", Context(catalog, models=models), core_weight=0.0)
    track, fallback = serve(rec, MemoryState(), 1, 151)
    assert (track, fallback) == (1, False)


def test_session_core_falls_back_without_a_model(catalog):
    empty = recommenders.build("session_core", Context(catalog, models=MemoryModels()))
    track, fallback = serve(empty, MemoryState(), 1, 150)
    assert fallback and artist_of(track) == artist_of(150)


def test_a_model_must_fit_the_catalog(catalog):
    with pytest.raises(ValueError, match="catalog track ids"):
        OnlineModel.from_arrays(np.array([1, N_TRACKS]), np.ones((2, 3)), catalog)
    with pytest.raises(ValueError, match="finite"):
        OnlineModel.from_arrays(np.array([1, 2]), np.array([[1.0, np.nan], [1, 1]]), catalog)


# -- through the service: the model goes live with its lists ----------------------------------


@pytest.fixture
def t4_experiments() -> Path:
    return EXPERIMENTS  # the shipped config: C, T1-T3 and the session arm T4


def t4_users(app, count: int) -> list[int]:
    assign = app.extensions["botify"].experiments.assign
    return [u for u in range(1000) if assign(u)["AB"] == "T4"][:count]


def deploy_toy(redis_client, catalog, users=range(50)) -> str:
    model = toy_model(catalog)
    embeddings = model.unit * 2.0  # any scale: the service normalises
    lists = [(u, list(range(100))) for u in users]
    return deploy(
        redis_client, lists, prefix=PREFIX, model=(model.tracks, embeddings, {"kind": "toy"})
    ).active


def test_model_goes_live_with_its_version_and_ready_says_so(
    make_app, t4_experiments, redis_client, catalog
):
    # no pointer cache: the switch is seen at once (otherwise within POINTER_CACHE_SECONDS)
    app = make_app(EXPERIMENTS=str(t4_experiments), POINTER_CACHE_SECONDS=0)
    client = app.test_client()
    user = t4_users(app, 1)[0]
    before = client.post(f"/next/{user}", json={"track": 40, "time": 1.0}).json["track"]
    assert artist_of(before) == artist_of(40)  # no model yet: sticky_artist fallback
    version = deploy_toy(redis_client, catalog)
    ready = client.get("/ready")
    assert ready.status_code == 200, ready.json
    assert ready.json["models"]["core"] == {"version": version, "loaded": True}
    walk = [40]
    for _ in range(5):
        walk.append(
            client.post(f"/next/{user}", json={"track": walk[-1], "time": 1.0}).json["track"]
        )
    assert len(set(walk)) == 6 and all(t < 100 for t in walk)  # no repeat, model tracks only
    client.post(f"/last/{user}", json={"track": walk[-1], "time": 0.5})
    assert not redis_client.exists(f"{PREFIX}:session:{{{user}}}")  # /last cleared the session
    events = [e for e in read_events(log_dir(app)) if e["message"] == "next"]
    assert [e["fallback"] for e in events] == [True] + [False] * 5


def test_a_model_that_does_not_load_serves_the_fallback_and_ready_says_why(
    make_app, t4_experiments, redis_client, catalog
):
    version = deploy_toy(redis_client, catalog)
    redis_client.hset(model_key(PREFIX, "core", version), "embeddings", b"\x00" * 12)
    app = make_app(EXPERIMENTS=str(t4_experiments))
    client = app.test_client()
    user = t4_users(app, 1)[0]
    answer = client.post(f"/next/{user}", json={"track": 40, "time": 1.0}).json
    assert artist_of(answer["track"]) == artist_of(40)
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json["models"]["core"]["loaded"] is False
    assert "sha256" in ready.json["models"]["core"]["reason"]
    assert any("model not loaded" in r for r in ready.json["reasons"])


def test_each_version_is_loaded_once(make_app, t4_experiments, redis_client, catalog, monkeypatch):
    deploy_toy(redis_client, catalog)
    app = make_app(EXPERIMENTS=str(t4_experiments))
    client = app.test_client()
    loads = []
    models = app.extensions["botify"].ctx.models
    real = models._load
    monkeypatch.setattr(models, "_load", lambda *a: loads.append(a) or real(*a))
    for user in t4_users(app, 20):
        client.post(f"/next/{user}", json={"track": 40, "time": 1.0})
    assert len(loads) == 1


def test_the_service_never_opens_the_worlds_hidden_embeddings(tmp_path, redis_url, tracks_json):
    """tracks.npy is the simulator's truth: a process serving every arm (T4 included) with an
    audit hook that fails any open of it must serve without tripping it."""
    world = tmp_path / "world"
    world.mkdir()
    (world / "tracks.json").write_text(Path(tracks_json).read_text())
    np.save(world / "tracks.npy", np.zeros((N_TRACKS, 4), dtype=np.float32))
    experiments = EXPERIMENTS
    script = textwrap.dedent(
        f"""
        import sys
        opened = []
        def hook(event, args):
            if event == "open" and "tracks.npy" in str(args[0]):
                opened.append(args[0])
                raise PermissionError("the service must not read tracks.npy")
        sys.addaudithook(hook)
        from botify.app import create_app
        app = create_app({{"CATALOG": {str(world / "tracks.json")!r},
                          "EXPERIMENTS": {str(experiments)!r}, "REDIS_URL": {redis_url!r},
                          "LOG_DIR": {str(tmp_path / "log")!r}}})
        client = app.test_client()
        for user in range(60):
            assert client.post(f"/next/{{user}}", json={{"track": 3, "time": 1.0}}).status_code == 200
            assert client.post(f"/last/{{user}}", json={{"track": 3, "time": 0.5}}).status_code == 200
        steps = [{{"user": u, "track": 3, "time": 1.0}} for u in range(7, 1000, 100)]
        assert client.post("/batch/07", json={{"steps": steps}}).status_code == 200
        client.get("/ready")
        print("opened", opened)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "opened []" in out.stdout


def test_the_journal_brings_an_emptied_redis_back(redis_client, catalog, tmp_path):
    from ops.journal import Journal
    from ops.keeper import Keeper

    model = toy_model(catalog)
    switch = deploy(
        redis_client,
        [(1, [5, 6]), (2, [7])],
        prefix=PREFIX,
        model=(model.tracks, model.unit, {"kind": "toy"}),
        journal=Journal(tmp_path / "journal"),
    )
    keeper = Keeper(redis_client, tmp_path / "journal", ["core"], PREFIX)
    assert keeper.check() == []  # nothing lost
    # the keeper may run as another user than the trainer (compose): the journal is readable
    version_dir = tmp_path / "journal" / "core" / switch.active
    assert all(path.stat().st_mode & 0o004 for path in [version_dir, *version_dir.iterdir()])
    assert version_dir.stat().st_mode & 0o001
    redis_client.flushall()
    assert keeper.check() == [f"core/{switch.active}"]
    from botify.toplists import TopLists

    top = TopLists(redis_client, "core", PREFIX)
    assert top.active_version() == switch.active
    assert top.get(1).tolist() == [5, 6] and top.get(2).tolist() == [7]
    fields = redis_client.hgetall(model_key(PREFIX, "core", switch.active))
    assert json.loads(fields[b"meta"])["tracks"] == 100
    assert keeper.check() == []
