"""The event log: one file per process, size rotation without losing or splitting lines."""

from __future__ import annotations

import json
import os

import pytest

from botify.events import EventLog

from .conftest import read_events


def test_rotation_keeps_every_line(tmp_path):
    log = EventLog(tmp_path, max_bytes=1000)
    for i in range(500):
        log.write({"message": "next", "i": i, "title": "ü" * (i % 7)})
    log.close()
    pid = os.getpid()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert f"events-{pid}.jsonl" in names and f"events-{pid}.jsonl.1" in names
    rotated = [p for p in tmp_path.iterdir() if p.suffix != ".jsonl"]
    assert all(p.stat().st_size < 1000 + 100 for p in rotated)  # rotated right after crossing
    assert sorted(e["i"] for e in read_events(tmp_path)) == list(range(500))
    # .1 is the oldest: numbering never renames an existing file.
    first = json.loads((tmp_path / f"events-{pid}.jsonl.1").read_text().splitlines()[0])
    assert first["i"] == 0


def test_reopening_appends_and_keeps_numbering(tmp_path):
    for _ in range(2):
        log = EventLog(tmp_path, max_bytes=200)
        for i in range(20):
            log.write({"i": i})
        log.close()
    assert len(read_events(tmp_path)) == 40


def test_file_is_opened_lazily_and_per_process(tmp_path):
    log = EventLog(tmp_path / "log")
    assert not (tmp_path / "log").exists()  # nothing opened before the first event
    log.write({"who": "parent"})
    pid = os.fork()
    if pid == 0:  # child: must write to its own file, not the parent's descriptor
        try:
            log.write({"who": "child"})
            log.close()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    log.write({"who": "parent"})
    log.close()
    parent = (tmp_path / "log" / f"events-{os.getpid()}.jsonl").read_text().splitlines()
    child = (tmp_path / "log" / f"events-{pid}.jsonl").read_text().splitlines()
    assert [json.loads(x)["who"] for x in parent] == ["parent", "parent"]
    assert [json.loads(x)["who"] for x in child] == ["child"]


def test_non_finite_numbers_never_reach_the_log(tmp_path):
    log = EventLog(tmp_path)
    with pytest.raises(ValueError):
        log.write({"time": float("nan")})
    log.write({"time": 0.5})
    log.close()
    assert read_events(tmp_path) == [{"time": 0.5}]
