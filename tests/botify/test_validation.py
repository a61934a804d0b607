"""The bad-input matrix: every bad request is a 4xx with a JSON message, none reaches the log."""

from __future__ import annotations

import json

import pytest

from .conftest import N_TRACKS, log_dir, read_events

JSON = "application/json"
OK = json.dumps({"track": 3, "time": 0.5})

BAD_BODIES = {
    "empty": "",
    "not json": "track=3&time=0.5",
    "truncated": '{"track": 3, "time": 0.',
    "array": "[3, 0.5]",
    "string": '"hello"',
    "null": "null",
    "missing track": '{"time": 0.5}',
    "missing time": '{"track": 3}',
    "track string": '{"track": "3", "time": 0.5}',
    "track fraction": '{"track": 3.5, "time": 0.5}',
    "track 1e400 (inf)": '{"track": 1e400, "time": 0.5}',
    "track bool": '{"track": true, "time": 0.5}',
    "track null": '{"track": null, "time": 0.5}',
    "track negative": '{"track": -1, "time": 0.5}',
    "track unknown": f'{{"track": {N_TRACKS}, "time": 0.5}}',
    "track 2**70": f'{{"track": {2**70}, "time": 0.5}}',
    "track object": '{"track": {"id": 3}, "time": 0.5}',
    "time string": '{"track": 3, "time": "0.5"}',
    "time bool": '{"track": 3, "time": false}',
    "time NaN": '{"track": 3, "time": NaN}',
    "time Infinity": '{"track": 3, "time": Infinity}',
    "time -Infinity": '{"track": 3, "time": -Infinity}',
    "time 1e400 (inf)": '{"track": 3, "time": 1e400}',
    "time negative": '{"track": 3, "time": -0.01}',
    "time above 1": '{"track": 3, "time": 1.5}',
    "time list": '{"track": 3, "time": [0.5]}',
    "deeply nested": "[" * 3000 + "]" * 3000,
    "nested in field": '{"track": 3, "time": ' + "[" * 2000 + "]" * 2000 + "}",
    "bad utf-8": b'{"track": 3, "time": 0.5, "x": "\xff"}',
}


@pytest.fixture
def post(client):
    def post(path: str, data, content_type: str | None = JSON, **kw):
        return client.post(path, data=data, content_type=content_type, **kw)

    return post


@pytest.mark.parametrize("endpoint", ["next", "last"])
@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_bad_body_is_400_with_json_message(post, endpoint, name):
    answer = post(f"/{endpoint}/1", BAD_BODIES[name])
    assert answer.status_code in (400, 413), answer.json
    assert isinstance(answer.json["message"], str) and answer.json["message"]


@pytest.mark.parametrize(
    "path, status",
    [
        ("/next/-1", 404),  # no route matches a negative id
        (f"/next/{2**32}", 400),
        (f"/next/{2**70}", 400),
        ("/next/abc", 404),
        ("/next/1.5", 404),
        ("/next/", 404),
        ("/last/-5", 404),
        (f"/last/{2**70}", 400),
        (f"/experiments/{2**70}", 400),
    ],
)
def test_bad_user_ids(post, client, path, status):
    answer = client.get(path) if path.startswith("/experiments") else post(path, OK)
    assert answer.status_code == status and "message" in answer.json


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_415(post, content_type):
    answer = post("/next/1", OK, content_type=content_type)
    assert answer.status_code == 415 and "message" in answer.json


def test_huge_body_is_413(post):
    huge = json.dumps({"track": 3, "time": 0.5, "pad": "x" * 100_000})
    answer = post("/next/1", huge)
    assert answer.status_code == 413 and "message" in answer.json


def test_matrix_leaves_log_clean_and_worker_serving(app, client, post):
    """After every bad request: zero 5xx, the worker still answers, only good events logged."""
    statuses = [post("/next/1", body).status_code for body in BAD_BODIES.values()]
    statuses += [post("/next/1", OK, content_type="text/plain").status_code]
    assert all(400 <= s < 500 for s in statuses)
    good = post("/next/1", OK)
    assert good.status_code == 200
    events = read_events(log_dir(app))
    assert [(e["message"], e["user"], e["track"], e["time"]) for e in events] == [
        ("next", 1, 3, 0.5)
    ]


def test_int_time_and_extra_fields_accepted(app, post):
    assert post("/next/1", '{"track": 3, "time": 1}').status_code == 200
    assert post("/next/1", '{"track": 3, "time": 0, "extra": "ignored"}').status_code == 200
    # JSON has one number type: 3.0 is the integer 3 (JSON Schema's `integer`, the OpenAPI doc's)
    assert (
        post("/batch/01", '{"steps": [{"user": 1.0, "track": 3.0, "time": 0.5}]}').status_code
        == 200
    )
    assert post("/next/1", '{"track": 3.0, "time": 0.5}').status_code == 200
    logged = [(e["user"], e["track"]) for e in read_events(log_dir(app))][-2:]
    assert logged == [(1, 3), (1, 3)] and all(type(v) is int for pair in logged for v in pair)
    assert post("/next/1", OK, content_type="application/json; charset=utf-8").status_code == 200
