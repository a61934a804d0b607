"""List recommenders by the seed's rule, on both state backends, and through the service."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
import redis

from botify import recommenders
from botify.catalog import Catalog
from botify.recommenders import Context
from botify.settings import Settings
from botify.step import Step
from botify.toplists import TopLists
from botify.user_state import MemoryState, RedisState
from tests.conftest import PREFIX

from .conftest import artist_of, log_dir, read_events, user_list, write_lists
from .test_api import first_user


@pytest.fixture
def catalog(tracks_json) -> Catalog:
    return Catalog.from_tracks_json(tracks_json)


@pytest.fixture(params=["memory", "redis"])
def backend(request, redis_url):
    """make(lists) -> a state backend holding `lists` ({user: [tracks]}) as list set `core`."""
    clients = []

    def make(lists: dict[int, list[int]], prefix: str = PREFIX):
        if request.param == "memory":
            return MemoryState({"core": {u: np.asarray(t) for u, t in lists.items()}})
        client = redis.Redis.from_url(redis_url)
        clients.append(client)
        top = TopLists(client, "core", prefix=prefix)
        version, _ = top.write(lists.items())
        top.activate(version)
        return RedisState(client, Settings(key_prefix=prefix))

    yield make
    for client in clients:
        client.close()


class Session:
    """Drives one recommender against a backend the way the service does, step by step."""

    def __init__(self, catalog, backend, name: str, **params):
        self.rec = recommenders.build(name, Context(catalog), **params)
        self.backend = backend
        self.seed = 0

    def next(self, user: int, prev: int, played: float = 1.0):
        self.seed += 1
        step = Step("next", user, prev, played, self.seed)
        answer = self.rec.recommend(step, self.backend.run(list(self.rec.ops(step))))
        return answer.track, answer.fallback

    def walk(self, user: int, prev: int, n: int, played: float = 1.0) -> list[int]:
        out = []
        for _ in range(n):
            prev = self.next(user, prev, played)[0]
            out.append(prev)
        return out

    def last(self, user: int) -> None:
        step = Step("last", user, 0, 0.5, 0)
        self.backend.run(list(self.rec.end_ops(step)))


def test_registry_knows_every_config_name():
    assert {
        "random",
        "sticky_artist",
        "toppop",
        "indexed",
        "sorted_indexed",
        "cooler_indexed",
    } <= set(recommenders.names())


def test_sorted_follows_the_seed_rule(catalog, backend):
    s = Session(catalog, backend({1: [10, 11, 12]}), "sorted_indexed")
    assert s.next(1, prev=150) == (10, False)  # the previous track is not in the list: the top
    assert s.next(1, prev=11) == (12, False)  # in the list: the one after it
    assert s.next(1, prev=12) == (10, False)  # the end wraps
    assert s.walk(1, prev=150, n=7) == [10, 11, 12, 10, 11, 12, 10]


def test_sorted_never_repeats_the_track_just_heard(catalog, backend):
    """A session whose first track is the list's top is served the second track, not the top
    again (the old cursor walk served the top: a repeat, time 0)."""
    s = Session(catalog, backend({1: [10, 11, 12]}), "sorted_indexed")
    assert s.next(1, prev=10)[0] == 11
    s.last(1)
    assert s.next(1, prev=10)[0] == 11  # also after /last: the rule needs no cursor


def test_cooler_restarts_after_a_skip_deep_in_the_list(catalog, backend):
    tracks = list(range(100, 160))  # 60 tracks: positions 0..59
    s = Session(catalog, backend({1: tracks}), "cooler_indexed")
    assert s.next(1, prev=tracks[51], played=0.09)[0] == tracks[0]  # skip past 50: the top
    assert s.next(1, prev=tracks[50], played=0.0)[0] == tracks[51]  # 50 is not past 50
    assert s.next(1, prev=tracks[51], played=0.1)[0] == tracks[52]  # 0.1 is not a skip
    assert s.next(1, prev=tracks[0], played=0.05)[0] == tracks[1]  # a skip at the top: walk on
    sorted_ = Session(catalog, backend({1: tracks}), "sorted_indexed")
    assert sorted_.next(1, prev=tracks[51], played=0.0)[0] == tracks[52]  # sorted ignores skips


def test_indexed_draws_from_the_list_by_the_step_seed(catalog, backend):
    s = Session(catalog, backend({1: [5, 6, 7]}), "indexed")
    drawn = [s.next(1, prev=0)[0] for _ in range(60)]
    assert set(drawn) == {5, 6, 7}
    again = Session(catalog, s.backend, "indexed")
    assert [again.next(1, prev=0)[0] for _ in range(60)] == drawn  # same seeds, same draws


@pytest.mark.parametrize("name", ["indexed", "sorted_indexed", "cooler_indexed"])
def test_user_without_list_falls_back_to_sticky_artist(catalog, backend, name):
    s = Session(catalog, backend({1: [5, 6, 7], 2: []}), name)
    for user in (2, 3):
        track, fallback = s.next(user, prev=123, played=0.5)
        assert fallback is True and artist_of(track) == artist_of(123)
    assert s.next(1, prev=123, played=0.5)[1] is False


def test_fallback_is_configurable(catalog, backend):
    s = Session(catalog, backend({}), "sorted_indexed", fallback="toppop")
    answers = [s.next(9, prev=150, played=0.5) for _ in range(20)]
    assert all(fallback and track < 100 for track, fallback in answers)  # pop = 1 / (1 + track)


@pytest.mark.parametrize("name", ["sorted_indexed", "session_core"])
def test_a_fallback_that_needs_state_is_refused(catalog, name):
    with pytest.raises(ValueError, match="must not need per-user state"):
        recommenders.build(name, Context(catalog), fallback="indexed")


@pytest.mark.parametrize("name", ["indexed", "session_core"])
@pytest.mark.parametrize("lists", ["core:x", "core{1}", "}"])
def test_a_list_set_name_that_would_break_the_keys_is_refused(catalog, name, lists):
    with pytest.raises(ValueError, match="bad list set name"):
        recommenders.build(name, Context(catalog), lists=lists)


@pytest.mark.parametrize("lists", ["core:x", "core{1}", "}"])
def test_the_lists_in_redis_refuse_the_same_names(redis_client, lists):
    """One rule for the arms and for the lists they read (and the trainer deploys)."""
    with pytest.raises(ValueError, match="bad list set name"):
        TopLists(redis_client, lists, PREFIX)
    assert TopLists(redis_client, "core.v2-x_1", PREFIX).name == "core.v2-x_1"


@pytest.mark.parametrize("name", ["sorted_indexed", "cooler_indexed", "indexed"])
def test_redis_and_memory_backends_answer_alike(catalog, redis_url, name):
    """The Lua scripts and their in-memory twin, on random lists and random steps."""
    rnd = random.Random(5)
    lists = {u: rnd.sample(range(200), rnd.choice([1, 2, 7, 60, 100])) for u in range(1, 9)}
    lists[9] = []
    client = redis.Redis.from_url(redis_url)
    top = TopLists(client, "core", prefix="twin")
    top.activate(top.write(lists.items())[0])
    answers = {}
    for kind, state in (
        ("memory", MemoryState({"core": {u: np.asarray(t) for u, t in lists.items()}})),
        ("redis", RedisState(client, Settings(key_prefix="twin"))),
    ):
        s = Session(catalog, state, name)
        rnd = random.Random(7)
        out = []
        for _ in range(600):
            user = rnd.randrange(1, 11)
            if rnd.random() < 0.05:
                s.last(user)
                continue
            mine = lists.get(user) or [0]
            prev = rnd.choice(mine) if rnd.random() < 0.8 else rnd.randrange(200)
            out.append(s.next(user, prev, rnd.choice([0.0, 0.05, 0.5, 1.0])))
        answers[kind] = out
    client.close()
    assert answers["memory"] == answers["redis"]
    assert {f for _, f in answers["redis"]} == {False, True}


# -- through the service ----------------------------------------------------------------------


def walk(client, user: int, steps: int, prev: int = 199, played: float = 1.0) -> list[int]:
    out = []
    for _ in range(steps):
        prev = client.post(f"/next/{user}", json={"track": prev, "time": played}).json["track"]
        out.append(prev)
    return out


def outside(user: int) -> int:
    """A track that is not in the user's test list (so a walk from it starts at the top)."""
    return next(t for t in range(200) if t not in user_list(user))


def test_a_session_walks_the_list_and_wraps(client, redis_url):
    user = first_user("T1")
    write_lists(redis_url, [user], k=5)
    assert walk(client, user, 7, prev=outside(user)) == user_list(user, 5) + user_list(user, 5)[:2]


def test_cooler_rule_through_the_service(client, core_lists):
    user = first_user("T2")
    deep = walk(client, user, 52, prev=outside(user))
    assert deep == user_list(user)[:52]
    assert walk(client, user, 1, prev=deep[-1], played=0.0) == [user_list(user)[0]]


def test_user_without_list_gets_fallback_and_the_event_says_so(app, client, core_lists):
    user = first_user("T1", start=500)  # lists exist for users 0..499 only
    answer = client.post(f"/next/{user}", json={"track": 77, "time": 0.5}).json
    assert artist_of(answer["track"]) == artist_of(77)
    (event,) = read_events(log_dir(app))
    assert event["fallback"] is True and event["recommendation"] == answer["track"]


def test_replicas_serve_one_walk_whatever_holds_the_cursor(make_app, core_lists, redis_client):
    """Two app instances (two replicas) alternate on one session, and the cursors vanish
    midway: the walk is the same, because the rule needs only the previous track."""
    user = first_user("T1")
    clients = [make_app(REPLICA="a").test_client(), make_app(REPLICA="b").test_client()]
    prev, got = outside(user), []
    for i in range(30):
        if i == 12:
            redis_client.delete(*redis_client.keys("botify:cursor:*"))
        prev = clients[i % 2].post(f"/next/{user}", json={"track": prev, "time": 1.0}).json["track"]
        got.append(prev)
    assert got == user_list(user)[:30]


def test_version_switch_is_seen_without_restart(client, redis_url, core_lists):
    user = first_user("T1")
    start = outside(user)
    assert walk(client, user, 1, prev=start) == [user_list(user)[0]]
    redis_client = redis.Redis.from_url(redis_url)
    lists = TopLists(redis_client, "core", PREFIX)
    version, _ = lists.write([(user, [199, 198, 197])])
    lists.activate(version)
    switched_at = time.monotonic()
    while walk(client, user, 1, prev=start) != [199]:
        assert time.monotonic() - switched_at < 1.5, "new version not seen within the pointer cache"
        time.sleep(0.05)
    redis_client.close()
