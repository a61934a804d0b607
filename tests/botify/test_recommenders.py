"""List recommenders and cursors: order, end of list, /last, cooler rule, fallback, sharing."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import redis

from botify import recommenders
from botify.catalog import Catalog
from botify.recommenders import Context
from botify.store import MemoryCursors, MemoryLists, RedisCursors

from .conftest import artist_of, read_events, user_list, write_lists
from .test_api import first_user


class DictLists:
    def __init__(self, lists: dict[int, list[int]]):
        self.lists = lists

    def get(self, user: int):
        tracks = self.lists.get(user)
        return None if tracks is None else np.asarray(tracks)


@pytest.fixture
def catalog(tracks_json) -> Catalog:
    return Catalog.from_tracks_json(tracks_json)


@pytest.fixture(params=["memory", "redis"])
def cursors(request, redis_url):
    if request.param == "memory":
        return MemoryCursors()
    return RedisCursors(redis.Redis.from_url(redis_url))


def build(name, catalog, cursors, lists, **params):
    ctx = Context(catalog, np.random.default_rng(0), {"core": DictLists(lists)}, cursors)
    return recommenders.build(name, ctx, **params)


def test_registry_knows_every_config_name():
    assert {
        "random",
        "sticky_artist",
        "toppop",
        "indexed",
        "sorted_indexed",
        "cooler_indexed",
    } <= set(recommenders.names())


def test_sorted_walks_the_list_wraps_and_restarts_on_last(catalog, cursors):
    rec = build("sorted_indexed", catalog, cursors, {1: [10, 11, 12]})
    assert [rec.recommend_next(1, 0, 1.0) for _ in range(7)] == [10, 11, 12, 10, 11, 12, 10]
    rec.on_session_end(1)
    assert rec.recommend(1, 0, 0.0) == (10, False)  # a new session starts at the top


def test_cooler_restarts_after_a_skip_deep_in_the_list(catalog, cursors):
    tracks = list(range(100, 160))  # 60 tracks: positions 0..59
    rec = build("cooler_indexed", catalog, cursors, {1: tracks})
    walk = [rec.recommend_next(1, 0, 1.0) for _ in range(52)]
    assert walk == tracks[:52]  # last handed out: position 51 (> 50)
    assert rec.recommend_next(1, walk[-1], 0.09) == tracks[0]  # skip past 50 -> top
    assert rec.recommend_next(1, tracks[0], 0.05) == tracks[1]  # skip at the top: keep walking
    for _ in range(49):
        rec.recommend_next(1, 0, 1.0)  # now at position 50
    assert rec.recommend_next(1, 0, 0.0) == tracks[51]  # position 50 is not past 50
    assert rec.recommend_next(1, 0, 0.1) == tracks[52]  # time 0.1 is not a skip
    assert rec.recommend_next(1, 0, 0.0) == tracks[0]


def test_sorted_ignores_skips(catalog, cursors):
    rec = build("sorted_indexed", catalog, cursors, {1: list(range(60))})
    assert [rec.recommend_next(1, 0, 0.0) for _ in range(60)] == list(range(60))


def test_indexed_draws_from_the_list(catalog):
    rec = build("indexed", catalog, MemoryCursors(), {1: [5, 6, 7]})
    drawn = {rec.recommend_next(1, 0, 1.0) for _ in range(100)}
    assert drawn == {5, 6, 7}


@pytest.mark.parametrize("name", ["indexed", "sorted_indexed", "cooler_indexed"])
def test_user_without_list_falls_back_to_sticky_artist(catalog, name):
    rec = build(name, catalog, MemoryCursors(), {1: [5, 6, 7], 2: []})
    for user in (2, 3):
        track, fallback = rec.recommend(user, 123, 0.5)
        assert fallback is True and artist_of(track) == artist_of(123)
    assert rec.recommend(1, 123, 0.5).fallback is False


def test_fallback_is_configurable(catalog):
    rec = build("sorted_indexed", catalog, MemoryCursors(), {}, fallback="toppop")
    answers = [rec.recommend(9, 150, 0.5) for _ in range(20)]
    assert all(fallback and track < 100 for track, fallback in answers)  # pop = 1 / (1 + track)


def test_unknown_list_set_is_a_config_error(catalog):
    ctx = Context(catalog, lists={})
    with pytest.raises(KeyError, match="list set 'core'"):
        recommenders.build("sorted_indexed", ctx)


# -- through the service ----------------------------------------------------------------------


def walk(client, user: int, steps: int, time_: float = 1.0) -> list[int]:
    return [
        client.post(f"/next/{user}", json={"track": 0, "time": time_}).json["track"]
        for _ in range(steps)
    ]


def test_last_resets_the_cursor(client, core_lists):
    user = first_user("T1")
    assert walk(client, user, 3) == user_list(user)[:3]
    client.post(f"/last/{user}", json={"track": 0, "time": 0.2})
    assert walk(client, user, 2) == user_list(user)[:2]


def test_end_of_list_wraps(client, redis_url):
    user = first_user("T1")
    write_lists(redis_url, [user], k=5)
    assert walk(client, user, 7) == user_list(user, 5) + user_list(user, 5)[:2]


def test_cooler_rule_through_the_service(client, core_lists):
    user = first_user("T2")
    walk(client, user, 52)
    assert walk(client, user, 1, time_=0.0) == [user_list(user)[0]]


def test_user_without_list_gets_fallback_and_the_event_says_so(app, client, core_lists):
    user = first_user("T1", start=500)  # lists exist for users 0..499 only
    answer = client.post(f"/next/{user}", json={"track": 77, "time": 0.5}).json
    assert artist_of(answer["track"]) == artist_of(77)
    (event,) = read_events(app.config["LOG_DIR"])
    assert event["fallback"] is True and event["recommendation"] == answer["track"]


def test_two_instances_share_cursors_without_duplicates(make_app, core_lists):
    """Two app instances (two replicas) on one Redis, hammered concurrently for one user: every
    position of the list is handed out exactly once per lap."""
    user = first_user("T1")
    clients = [make_app(REPLICA="a").test_client(), make_app(REPLICA="b").test_client()]
    got: list[int] = []
    lock = threading.Lock()

    def hammer(client):
        for _ in range(50):
            track = client.post(f"/next/{user}", json={"track": 0, "time": 1.0}).json["track"]
            with lock:
                got.append(track)

    threads = [threading.Thread(target=hammer, args=(clients[i % 2],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 200 and sorted(got) == sorted(user_list(user) * 2)


def test_version_switch_is_seen_without_restart(client, redis_url, core_lists):
    user = first_user("T1")
    assert walk(client, user, 1) == [user_list(user)[0]]
    client.post(f"/last/{user}", json={"track": 0, "time": 0.2})
    redis_client = redis.Redis.from_url(redis_url)
    from botify.toplists import TopLists

    lists = TopLists(redis_client, "core")
    version, _ = lists.write([(user, [199, 198, 197])])
    lists.activate(version)
    switched_at = time.monotonic()
    while walk(client, user, 1) != [199]:
        client.post(f"/last/{user}", json={"track": 0, "time": 0.2})
        assert time.monotonic() - switched_at < 1.5, "new version not seen within the pointer cache"
        time.sleep(0.05)
    redis_client.close()


def test_memory_lists_from_the_list_file(tmp_path, catalog):
    path = tmp_path / "recs.jsonl"
    path.write_text('{"user": 1, "tracks": [9, 8, 7]}\n{"user": 2, "tracks": []}\n')
    lists = MemoryLists.from_jsonl(path)
    assert lists.get(1).tolist() == [9, 8, 7] and lists.get(3) is None
    ctx = Context(catalog, np.random.default_rng(0), {"core": lists})
    rec = recommenders.build("sorted_indexed", ctx)  # no cursor store given: in-memory cursors
    assert [rec.recommend_next(1, 0, 1.0) for _ in range(4)] == [9, 8, 7, 9]
    assert rec.recommend(2, 0, 1.0).fallback is True


@pytest.mark.parametrize("name", ["sorted_indexed", "cooler_indexed"])
def test_one_round_trip_path_matches_the_list_then_cursor_path(catalog, redis_url, name):
    """With lists in Redis (TopLists) the list is read inside the cursor's Lua script; the
    answers must equal reading the list first and moving the cursor after."""
    from botify.toplists import TopLists

    client = redis.Redis.from_url(redis_url)
    lists = {1: [(7 * i + 3) % 200 for i in range(60)], 2: [5], 3: []}
    top = TopLists(client, "core")
    version, _ = top.write(lists.items())
    top.activate(version)
    rng = np.random.default_rng(1)
    times = [float(t) for t in rng.choice([0.0, 0.05, 0.5, 1.0], size=150)]

    def walk(source, cursors):
        ctx = Context(catalog, np.random.default_rng(0), {"core": source}, cursors)
        rec = recommenders.build(name, ctx)
        out = []
        for user in (1, 2, 3, 4):
            out += [tuple(rec.recommend(user, 0, t)) for t in times]
            rec.on_session_end(user)
            out.append(tuple(rec.recommend(user, 0, 1.0)))
        return out

    fast = walk(top, RedisCursors(client, prefix="fast"))
    slow = walk(DictLists(lists), RedisCursors(client, prefix="slow"))
    assert fast == slow
    assert any(fallback for _, fallback in fast) and not all(fallback for _, fallback in fast)
    client.close()
