"""The compose trainer's command end to end, and the allocator re-exec of `python -m trainer`."""

from __future__ import annotations

import json
import os
import sys

import pytest
from click.testing import CliRunner

from botify.toplists import TopLists
from tests.conftest import PREFIX
from tests.trainer.conftest import tiny_events
from trainer import __main__ as entry
from trainer.cli import cli


def test_run_prepares_trains_recommends_and_deploys(tmp_path, redis_url, redis_client):
    tiny_events().to_parquet(tmp_path / "events.parquet")
    args = ["run", "--data", str(tmp_path / "events.parquet"), "--work", str(tmp_path / "w")]
    result = CliRunner().invoke(
        cli, [*args, "--redis-url", redis_url, "--epochs", "1", "--variant", "ave"]
    )
    assert result.exit_code == 0, result.output
    reader = TopLists(redis_client, "core", PREFIX)
    assert result.stdout.strip().splitlines()[-1] == reader.active_version()
    recs = [json.loads(line) for line in (tmp_path / "w" / "recs.jsonl").read_text().splitlines()]
    assert len(recs) == 30 and reader.count(reader.active_version()) == 30
    assert all(reader.get(r["user"]).tolist() == r["tracks"] for r in recs)


@pytest.mark.skipif(sys.platform != "linux", reason="glibc allocator settings")
def test_entry_point_reexecs_once_with_allocator_settings(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "execve", lambda *a: calls.append(a))
    monkeypatch.setattr(sys, "argv", ["x", "train", "--epochs", "1"])
    for key in entry.ALLOCATOR_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("BOTIFY_TRAINER_MALLOC", raising=False)
    entry._reexec_with_allocator_settings()
    [(exe, argv, env)] = calls
    assert argv[1:] == ["-m", "trainer", "train", "--epochs", "1"]
    assert env["MALLOC_MMAP_MAX_"] == "0" and int(env["MALLOC_TRIM_THRESHOLD_"]) == 64 << 30
    monkeypatch.setenv("MALLOC_MMAP_MAX_", "0")  # the re-executed process does not loop
    entry._reexec_with_allocator_settings()
    assert len(calls) == 1
