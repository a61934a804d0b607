"""POST /batch/<shard>: many sessions' steps in one call, each handled as its own request."""

from __future__ import annotations

import json

import pytest
import redis

from botify import affinity
from botify.experiments import Experiments

from .conftest import EXPERIMENTS, N_TRACKS, artist_of, log_dir, read_events, user_list

ROUTE = Experiments.from_file(EXPERIMENTS)


def users_of_shard(shard: int, count: int, start: int = 0) -> list[int]:
    return [u for u in range(start, 100_000) if u % affinity.SHARDS == shard][:count]


def post_batch(client, shard: str, steps, **kwargs):
    return client.post(f"/batch/{shard}", json={"steps": steps}, **kwargs)


def test_steps_are_answered_in_order_with_one_line_each(app, client, core_lists):
    users = users_of_shard(7, 6)  # 7, 107, ..., all < 500: they have lists
    steps = [{"user": u, "track": 42, "time": 0.5, "seed": 1000 + u} for u in users[:5]]
    steps.append({"user": users[5], "track": 3, "time": 0.25, "message": "last"})
    answer = post_batch(client, "07", steps)
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    results = answer.json["results"]
    assert [r["user"] for r in results] == users
    assert all(isinstance(r["track"], int) for r in results[:5]) and results[5] == {
        "user": users[5]
    }
    events = read_events(log_dir(app))
    assert [(e["message"], e["user"]) for e in events] == [("next", u) for u in users[:5]] + [
        ("last", users[5])
    ]
    assert [e["recommendation"] for e in events[:5]] == [r["track"] for r in results[:5]]
    assert events[5]["recommendation"] is None and events[5]["time"] == 0.25
    assert all(e["experiments"] == ROUTE.assign(e["user"]) for e in events)
    assert all(0 < e["latency"] < 1 for e in events)


def test_a_batch_answers_exactly_what_single_requests_answer(make_app, core_lists, tmp_path):
    """The same steps with the same seeds, once as /next and /last calls and once as batches:
    the same answers and the same event lines apart from timestamp and latency."""
    users = users_of_shard(23, 8) + users_of_shard(23, 2, start=1000)  # two without lists
    sessions = {u: [user_list(u)[3], *range(100, 104)] for u in users}  # prev tracks per step
    single = make_app(LOG_DIR=str(tmp_path / "single")).test_client()
    batched = make_app(LOG_DIR=str(tmp_path / "batched")).test_client()
    rounds = [
        [{"user": u, "track": sessions[u][step], "time": 0.05 * step, "seed": 77 * u + step,
          "message": "last" if step == 4 else "next"} for u in users]
        for step in range(5)
    ]  # fmt: skip
    # one whole run per path: the sessions (T4's live state) end with /last before the next run
    by_batch = [post_batch(batched, "23", steps).json["results"] for steps in rounds]
    by_single = [
        [
            single.post(f"/{s['message']}/{s['user']}", json={"track": s["track"], "time": s["time"]},
                        headers={"X-Botify-Seed": str(s["seed"])}).json
            for s in steps
        ]
        for steps in rounds
    ]  # fmt: skip
    assert by_single == by_batch

    def lines(folder: str) -> list[dict]:
        out = read_events(tmp_path / folder)
        for e in out:
            del e["timestamp"], e["latency"]
        return out

    assert lines("single") == lines("batched")
    assert len(lines("single")) == 50
    assert {e["fallback"] for e in lines("single")} == {True, False}


def test_bad_steps_get_their_own_errors_and_the_rest_is_served(app, client):
    good = users_of_shard(5, 3)
    steps = [
        {"user": good[0], "track": 1, "time": 0.5},
        {"user": good[1], "track": N_TRACKS, "time": 0.5},  # not in the catalog
        {"user": good[2], "track": 1, "time": 2},  # time > 1
        {"user": 6, "track": 1, "time": 0.5},  # shard 06, not 05
        {"user": good[0], "track": 2, "time": 0.5},  # the same user twice
        {"user": "5", "track": 1, "time": 0.5},
        {"user": good[1], "track": 1, "time": 0.5, "message": "skip"},
        {"user": good[2], "track": 1, "time": 0.5, "seed": -1},
        "not a step",
    ]
    answer = post_batch(client, "05", steps)
    assert answer.status_code == 200
    results = answer.json["results"]
    # served (every arm answers sticky_artist here: no lists, no model), by the artist of track 1
    assert results[0]["user"] == good[0] and artist_of(results[0]["track"]) == artist_of(1)
    errors = [r.get("error") for r in results]
    assert errors[0] is None and all(e["status"] == 400 for e in errors[1:])
    messages = [e["message"] for e in errors[1:]]
    for text, fragment in zip(messages, ["catalog", "time", "shard 06", "more than one",
                                         "user must be", "message", "seed", "JSON object"],
                              strict=True):  # fmt: skip
        assert fragment in text, text
    assert results[3]["user"] == 6 and "user" not in results[5]
    assert [e["user"] for e in read_events(log_dir(app))] == [good[0]]


@pytest.mark.parametrize(
    "path, body, status, fragment",
    [
        ("/batch/5", {"steps": []}, 404, "two ASCII digits"),
        ("/batch/100", {"steps": []}, 404, "two ASCII digits"),
        ("/batch/%D9%A3%D9%A3", {"steps": []}, 404, "two ASCII digits"),
        ("/batch/05", {"steps": {}}, 400, "steps"),
        ("/batch/05", [1, 2], 400, "steps"),
        ("/batch/05", {"steps": [{"user": 5, "track": 1, "time": 0.5}] * 1025}, 413, "1024"),
    ],
)
def test_bad_batches_are_a_json_4xx(client, path, body, status, fragment):
    answer = client.post(path, json=body)
    assert answer.status_code == status and fragment in answer.json["message"]


def test_batch_body_limits(client):
    too_big = json.dumps({"steps": [], "pad": "x" * (128 * 1024)})
    answer = client.post("/batch/05", data=too_big, content_type="application/json")
    assert answer.status_code == 413 and "body larger" in answer.json["message"]
    assert client.post("/batch/05", data="{", content_type="application/json").status_code == 400
    assert client.post("/batch/05", data="{}", content_type="text/plain").status_code == 415
    assert post_batch(client, "05", []).json == {"results": []}


def test_redis_work_of_a_batch_is_one_round_trip(app, client, core_lists, monkeypatch):
    users = users_of_shard(11, 40)  # every arm, lists for most
    steps = [{"user": u, "track": 9, "time": 1.0, "seed": u} for u in users]
    post_batch(client, "11", steps)  # warms the list pointer cache
    calls = []
    real = redis.client.Pipeline.execute
    monkeypatch.setattr(
        redis.client.Pipeline,
        "execute",
        lambda self, *a, **k: calls.append(1) or real(self, *a, **k),
    )
    answer = post_batch(client, "11", steps)
    assert answer.status_code == 200 and len(calls) == 1
    routed = {ROUTE.routing.assign(u).recommender for u in users}
    assert routed == {
        "sticky_artist",
        "sorted_indexed",
        "cooler_indexed",
        "indexed",
        "session_core",
    }


def test_redis_down_a_batch_falls_back_per_step(make_app, redis_url, core_lists):
    app = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    users = users_of_shard(3, 12)
    answer = post_batch(
        app.test_client(), "03", [{"user": u, "track": 77, "time": 1.0} for u in users]
    )
    assert answer.status_code == 200
    assert all(artist_of(r["track"]) == artist_of(77) for r in answer.json["results"])
    events = read_events(log_dir(app))
    routed = [ROUTE.routing.assign(u).name for u in users]
    assert [e["fallback"] for e in events] == [arm != "C" for arm in routed]
