"""The event log: one file per process, size rotation without losing or splitting lines."""

from __future__ import annotations

import json
import os

import msgspec
import pytest

from botify import event_schema
from botify.event_log import EventLog
from botify.event_schema import Event

from .conftest import read_events


def make_event(i: int, **fields) -> Event:
    base = dict(message="next", timestamp=1_700_000_000_000 + i, user=i, track=i % 7, time=0.5,
                latency=0.001, recommendation=i + 1, experiments={"AB": "C"},
                replica="ü" * (i % 7), fallback=False)  # fmt: skip
    return Event(**{**base, **fields})


def test_rotation_keeps_every_line(tmp_path):
    log = EventLog(tmp_path, max_bytes=1000)
    for i in range(500):
        log.write(make_event(i))
    log.close()
    pid = os.getpid()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert f"events-{pid}.jsonl" in names and f"events-{pid}.jsonl.1" in names
    rotated = [p for p in tmp_path.iterdir() if p.suffix != ".jsonl"]
    assert all(p.stat().st_size < 1000 + 300 for p in rotated)  # rotated right after crossing
    assert sorted(e["user"] for e in read_events(tmp_path)) == list(range(500))
    # .1 is the oldest: numbering never renames an existing file.
    first = json.loads((tmp_path / f"events-{pid}.jsonl.1").read_text().splitlines()[0])
    assert first["user"] == 0


def test_a_batch_is_one_write_and_rotation_never_splits_it(tmp_path):
    log = EventLog(tmp_path, max_bytes=700)
    for start in range(0, 300, 30):
        log.write([make_event(i) for i in range(start, start + 30)])
    log.close()
    for path in tmp_path.iterdir():
        users = [json.loads(line)["user"] for line in path.read_text().splitlines()]
        assert len(users) % 30 == 0 and users == sorted(users)  # whole batches, in order
    assert sorted(e["user"] for e in read_events(tmp_path)) == list(range(300))


def test_reopening_appends_and_keeps_numbering(tmp_path):
    for _ in range(2):
        log = EventLog(tmp_path, max_bytes=200)
        for i in range(20):
            log.write(make_event(i))
        log.close()
    assert len(read_events(tmp_path)) == 40


def test_file_is_opened_lazily_and_per_process(tmp_path):
    log = EventLog(tmp_path / "log")
    assert not (tmp_path / "log").exists()  # nothing opened before the first event
    log.write(make_event(1, replica="parent"))
    pid = os.fork()
    if pid == 0:  # child: must write to its own file, not the parent's descriptor
        try:
            log.write(make_event(2, replica="child"))
            log.close()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    log.write(make_event(3, replica="parent"))
    log.close()
    parent = (tmp_path / "log" / f"events-{os.getpid()}.jsonl").read_text().splitlines()
    child = (tmp_path / "log" / f"events-{pid}.jsonl").read_text().splitlines()
    assert [json.loads(x)["replica"] for x in parent] == ["parent", "parent"]
    assert [json.loads(x)["replica"] for x in child] == ["child"]


def test_non_finite_numbers_never_reach_the_log(tmp_path):
    log = EventLog(tmp_path)
    with pytest.raises(ValueError):
        log.write([make_event(1), make_event(2, latency=float("nan"))])
    log.write(make_event(3))
    log.close()
    assert [e["user"] for e in read_events(tmp_path)] == [3]  # the bad batch wrote nothing


def test_the_line_is_the_contract():
    line = event_schema.encode(make_event(4, replica="r-1", propensity=0.125))
    assert line == (
        b'{"message":"next","timestamp":1700000000004,"user":4,"track":4,"time":0.5,'
        b'"latency":0.001,"recommendation":5,"experiments":{"AB":"C"},"replica":"r-1",'
        b'"fallback":false,"propensity":0.125,"team":null}\n'
    )
    assert event_schema.decode(line) == make_event(4, replica="r-1", propensity=0.125)
    old = b'{"message":"last","timestamp":1,"user":1,"track":2,"time":1,"latency":0,'
    old += b'"recommendation":null,"experiments":{},"replica":"x"}'
    assert event_schema.decode(old).fallback is False  # logs from before `fallback` existed
    assert event_schema.decode(old).team is None  # and from before `team`
    assert event_schema.decode(old).propensity is None  # ... and before `propensity`


@pytest.mark.parametrize("propensity", [0.0, -0.5, 1.5])
def test_a_propensity_outside_0_1_is_refused(propensity):
    line = event_schema.encode(make_event(4)).replace(
        b'"propensity":null', b'"propensity":' + str(propensity).encode()
    )
    with pytest.raises(ValueError, match="propensity"):
        event_schema.decode(line)


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"message": "skip"}, "message"),
        ({"time": 1.5}, "time"),
        ({"user": -1}, "user"),
        ({"user": True}, "user"),
        ({"recommendation": "7"}, "recommendation"),
        ({"experiments": {"": "C"}}, "experiments"),
    ],
)
def test_decode_says_which_field_is_wrong(change, reason):
    fields = msgspec.structs.asdict(make_event(1))
    with pytest.raises(msgspec.ValidationError, match=reason):
        event_schema.decode(json.dumps({**fields, **change}))
