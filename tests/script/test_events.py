"""Line validation: the fast (pyarrow) and slow (json.loads) paths accept exactly the same lines."""

from __future__ import annotations

import json

import pytest

from script.events import _parse_slowly, parse_chunk

GOOD = {
    "message": "next",
    "timestamp": 1767225600000,
    "user": 7,
    "track": 42,
    "time": 0.75,
    "latency": 0.0012,
    "recommendation": 43,
    "experiments": {"AB": "T1", "COLLECT": "C"},
    "replica": "recommender-1",
}


def line(**changes) -> bytes:
    event = {**GOOD, **changes}
    return json.dumps({k: v for k, v in event.items() if v is not ...}).encode()


def replaced(old: str, new: str) -> bytes:
    return json.dumps(GOOD).replace(old, new).encode()


ACCEPTED = {
    "good": line(),
    "last with null recommendation": line(message="last", recommendation=None),
    "integer time": line(time=1),
    "no experiments logged": line(experiments={}),
    "extra field": line(fallback=True),
    "extra nested field": line(debug={"a": [1, 2]}),
    "null arm reads as not logged": line(experiments={"AB": None}),
    "missing recommendation reads as null": line(recommendation=...),
}

REJECTED = {
    "truncated": line()[:60],
    "not an object": b"[1, 2, 3]",
    "message unknown": line(message="skip"),
    "message not a string": line(message=5),
    "user as float": line(user=7.0),
    "user as string": line(user="7"),
    "user as bool": line(user=True),
    "user too large for int64": line(user=2**70),
    "negative track": line(track=-1),
    "time NaN": replaced('"time": 0.75', '"time": NaN'),
    "latency Infinity": replaced('"latency": 0.0012', '"latency": Infinity'),
    "time above 1": line(time=1.5),
    "time as bool": line(time=False),
    "negative latency": line(latency=-0.1),
    "missing user": line(user=...),
    "null timestamp": line(timestamp=None),
    "missing experiments": line(experiments=...),
    "experiments a list": line(experiments=["AB"]),
    "arm not a string": line(experiments={"AB": 1}),
    "replica not a string": line(replica=3),
    "recommendation as float": line(recommendation=4.5),
    "duplicate key": replaced('"user": 7', '"user": 7, "user": 8'),
    "invalid utf-8": line()[:-3] + b'\xff"}',
}


@pytest.mark.parametrize("raw", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_accepted_lines_agree_on_both_paths(raw):
    fast = parse_chunk(raw + b"\n")
    slow = _parse_slowly([raw], "x", 1)
    assert fast.bad == [] and slow.bad == []
    assert fast.table.to_pylist() == slow.table.to_pylist()
    assert fast.table.num_rows == 1


@pytest.mark.parametrize("raw", REJECTED.values(), ids=REJECTED.keys())
def test_rejected_lines_agree_on_both_paths(raw):
    fast = parse_chunk(raw + b"\n", "f.jsonl", 10)
    slow = _parse_slowly([raw], "f.jsonl", 10)
    assert fast.table.num_rows == slow.table.num_rows == 0
    assert len(fast.bad) == 1 and fast.bad[0].line == 10 and fast.bad[0].source == "f.jsonl"
    assert fast.bad[0].reason == slow.bad[0].reason


def test_values_and_experiment_columns():
    parsed = parse_chunk(line() + b"\n" + line(user=8, experiments={"AB": "C"}) + b"\n")
    assert parsed.fast
    assert parsed.table.column_names == [
        "message", "timestamp", "user", "track", "time", "latency", "recommendation", "replica",
        "exp_AB", "exp_COLLECT",
    ]  # fmt: skip
    assert parsed.table.to_pylist()[1] == {
        **{k: v for k, v in GOOD.items() if k != "experiments"},
        "user": 8,
        "exp_AB": "C",
        "exp_COLLECT": None,
    }


def test_a_bad_line_sets_aside_only_itself_with_its_number_and_reason():
    chunk = b"\n".join([line(user=1), b"", line(user=2, time=float("nan")), line(user=3), b"{oops"])
    parsed = parse_chunk(chunk, "a.jsonl", 100)
    assert not parsed.fast
    assert parsed.table["user"].to_pylist() == [1, 3]
    assert [(b.line, b.reason) for b in parsed.bad] == [
        (102, "time is not finite"),
        (104, parsed.bad[1].reason),
    ]
    assert parsed.bad[1].reason.startswith("not valid JSON")
    assert parsed.bad[1].raw == "{oops"


def test_blank_input():
    assert parse_chunk(b"\n \n").table.num_rows == 0
