"""Redis stopped and restarted under traffic: no 5xx, fallback answers, recovery within ~1 s."""

from __future__ import annotations

import time

import pytest
import redis

from ops.redis_server import RedisServer

from .conftest import artist_of, log_dir, read_events, user_list, write_lists
from .test_api import first_user


@pytest.fixture
def own_redis():
    with RedisServer() as server:
        yield server


def test_redis_restart_under_traffic(make_app, own_redis):
    write_lists(own_redis.url, range(200))
    app = make_app(REDIS_URL=own_redis.url)
    client = app.test_client()
    user, control = first_user("T1"), first_user("C")
    statuses: list[int] = []

    start = next(t for t in range(200) if t not in user_list(user))  # a walk from the top

    def next_(u: int, track: int = start) -> dict:
        answer = client.post(f"/next/{u}", json={"track": track, "time": 1.0})
        statuses.append(answer.status_code)
        return answer.json

    walked = [next_(user)["track"]]
    for _ in range(2):
        walked.append(next_(user, walked[-1])["track"])
    assert walked == user_list(user)[:3]
    assert client.get("/ready").status_code == 200

    own_redis.stop()
    started = time.monotonic()
    during = [next_(user, track=55)["track"] for _ in range(50)]
    elapsed = time.monotonic() - started
    assert all(artist_of(t) == artist_of(55) for t in during)  # sticky_artist fallback
    assert elapsed < 2.0  # the breaker keeps a dead Redis from costing a timeout per request
    assert artist_of(next_(control, track=120)["track"]) == artist_of(120)  # C never needs Redis
    down = client.get("/ready")
    assert down.status_code == 503 and "Redis unavailable" in down.json["reasons"][0]

    own_redis.start()  # same port, empty
    restarted = time.monotonic()
    empty = client.get("/ready")
    assert empty.status_code == 503
    assert empty.json["reasons"] == ["list set 'core' has no active version"]
    assert redis.Redis.from_url(own_redis.url).exists("botify:catalog")  # refilled by the service
    write_lists(own_redis.url, range(200))  # the trainer redeploys
    while True:
        answer = next_(user)
        if answer["track"] == user_list(user)[0]:  # served from the new lists: recovered
            break
        assert time.monotonic() - restarted < 1.5, "did not recover within a second"
        time.sleep(0.01)
    assert client.get("/ready").status_code == 200
    assert set(statuses) == {200}

    events = read_events(log_dir(app))
    assert len(events) == len(statuses)
    assert sum(e["fallback"] for e in events) >= 50
    assert events[-1]["fallback"] is False
    # the service's own fallback (sticky_artist) logs its propensity: 1 of the artist's 10 tracks
    assert {e["propensity"] for e in events if e["fallback"]} == {0.1}
    assert {e["propensity"] for e in events if not e["fallback"]} == {1.0, 0.1}  # T1 and C


def test_last_while_redis_is_down_still_logs(make_app, own_redis):
    app = make_app(REDIS_URL=own_redis.url)
    client = app.test_client()
    own_redis.stop()
    user = first_user("T2")
    assert client.post(f"/last/{user}", json={"track": 1, "time": 0.5}).status_code == 200
    assert [e["message"] for e in read_events(log_dir(app))] == ["last"]
