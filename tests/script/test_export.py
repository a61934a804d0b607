"""The exporter: rotated files, quarantine, duplicates, idempotence, schema, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from script import export
from script.fake_logs import FakeLogSpec, fake_events, write_logs
from tests.script.test_event_parser import line


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return fake_events(FakeLogSpec(users=60, arms=("C", "T1"), seed=3))


@pytest.fixture
def logs(tmp_path, events) -> Path:
    root = tmp_path / "logs"
    write_logs(events, root, "AB", lines_per_file=30)
    return root


def read(dataset: Path) -> pd.DataFrame:
    return pd.read_parquet(dataset)


def test_rotated_files_are_found_oldest_first(logs, events):
    files = export.find_log_files([logs])
    names = [p.name for p in files if p.parent.name == "recommender-1" and "1000" in p.name]
    parts = len(names) - 1
    assert parts >= 10  # .10 must sort after .9, not after .1
    assert names == [f"events-1000.jsonl.{k}" for k in range(1, parts + 1)] + ["events-1000.jsonl"]
    # the oldest part holds the worker's first lines, the live file its last
    worker = events[events["worker"] == 0]
    first = json.loads((logs / "recommender-1" / names[0]).read_bytes().split(b"\n")[0])
    last = json.loads((logs / "recommender-1" / names[-1]).read_bytes().splitlines()[-1])
    assert first["timestamp"] == worker["timestamp"].iloc[0]
    assert last["timestamp"] == worker["timestamp"].iloc[-1]
    (logs / "recommender-1" / "notes.txt").write_text("not a log")
    (logs / "recommender-1" / "events-1000.jsonl.bak").write_text("not a log")
    assert export.find_log_files([logs]) == files


def test_files_named_explicitly_are_read_whatever_their_name(tmp_path):
    course = tmp_path / "data.json"  # the course's own log file
    course.write_bytes(line(user=1) + b"\n" + line(user=2) + b"\n")
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "data.json").write_bytes(line(user=3) + b"\n")  # in a folder: not a log name
    (folder / "events-5.jsonl").write_bytes(line(user=4) + b"\n")
    assert export.find_log_files([folder, course]) == [course, folder / "events-5.jsonl"]
    summary = export.export([course, folder], tmp_path / "ds")
    assert summary.files == 2 and sorted(read(tmp_path / "ds")["user"]) == [1, 2, 4]


def test_export_keeps_every_event_once_with_the_fixed_schema(logs, tmp_path, events):
    summary = export.export([logs], tmp_path / "ds")
    data = read(tmp_path / "ds")
    assert len(data) == len(events) == summary.events == summary.events_added
    assert summary.bad_lines == 0 and summary.duplicates == 0
    assert summary.users == events["user"].nunique()
    assert summary.sessions == (events["message"] == "last").sum()
    assert summary.arms == {"AB": events["arm"].value_counts().sort_index().to_dict()}
    schema = pq.read_schema(tmp_path / "ds" / export.DATA_FILE)
    assert [(f.name, str(f.type)) for f in schema] == [
        ("message", "string"), ("timestamp", "int64"), ("user", "int64"), ("track", "int64"),
        ("time", "double"), ("latency", "double"), ("recommendation", "int64"),
        ("replica", "string"), ("fallback", "bool"), ("propensity", "double"),
        ("team", "string"), ("exp_AB", "string"),
    ]  # fmt: skip
    assert data["timestamp"].is_monotonic_increasing
    expected = events.sort_values(["timestamp", "user"], ignore_index=True)
    got = data.sort_values(["timestamp", "user"], ignore_index=True)
    assert got["user"].tolist() == expected["user"].tolist()
    assert got["exp_AB"].tolist() == expected["arm"].tolist()
    assert got["time"].tolist() == expected["time"].tolist()
    assert got["recommendation"].isna().sum() == (expected["message"] == "last").sum()


def test_export_is_idempotent(logs, tmp_path):
    out = tmp_path / "ds"
    export.export([logs], out)
    before = (out / export.DATA_FILE).read_bytes()
    again = export.export([logs, logs], out)
    assert again.events_added == 0 and again.duplicates == again.lines_valid
    assert (out / export.DATA_FILE).read_bytes() == before


def test_a_pull_then_a_bigger_pull_gives_each_event_once(logs, tmp_path, events):
    early = tmp_path / "early"
    shutil.copytree(logs, early)
    live = early / "recommender-2" / "events-1002.jsonl"
    text = live.read_bytes()
    live.write_bytes(text[: len(text) // 2 + 7])  # a pull in the middle of a write
    out = tmp_path / "ds"
    first = export.export([early], out)
    assert first.bad_lines == 1  # the cut line, set aside
    assert first.events < len(events)
    second = export.export([logs], out)
    assert second.events == len(events)
    assert second.events_added == len(events) - first.events
    assert read(out).equals(read_fresh(logs, tmp_path / "fresh"))


def read_fresh(logs: Path, out: Path) -> pd.DataFrame:
    export.export([logs], out)
    return read(out)


def test_bad_and_duplicated_lines(tmp_path):
    folder = tmp_path / "logs" / "recommender-1"
    folder.mkdir(parents=True)
    lines = [line(user=1), line(user=1), line(user=2, message="skip"), b"{", line(user=3)]
    (folder / "events-9.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (folder / "events-9.jsonl.1").write_bytes(line(user=1) + b"\n" + line(user=4) + b"\n")
    out = tmp_path / "ds"
    summary = export.export([tmp_path / "logs"], out)
    assert sorted(read(out)["user"]) == [1, 3, 4]
    assert summary.duplicates == 2 and summary.bad_lines == 2
    quarantined = [json.loads(x) for x in (out / export.QUARANTINE).read_text().splitlines()]
    assert [(q["line"], q["reason"]) for q in quarantined] == [
        (3, "Invalid enum value 'skip' - at `$.message`"),
        (4, quarantined[1]["reason"]),
    ]
    assert quarantined[0]["source"].endswith("events-9.jsonl")
    export.export([tmp_path / "logs"], out)  # quarantine is idempotent too
    assert len((out / export.QUARANTINE).read_text().splitlines()) == 2
    assert json.loads((out / export.SUMMARY_FILE).read_text())["bad_lines"] == 2


def test_small_chunks_give_the_same_dataset(logs, tmp_path):
    export.export([logs], tmp_path / "a")
    export.export([logs], tmp_path / "b", chunk_bytes=1000)
    assert read(tmp_path / "a").equals(read(tmp_path / "b"))


def test_new_experiments_extend_the_dataset(tmp_path):
    folder = tmp_path / "logs" / "recommender-1"
    folder.mkdir(parents=True)
    (folder / "events-1.jsonl").write_bytes(line(experiments={"COLLECT": "C"}) + b"\n")
    export.export([tmp_path / "logs"], tmp_path / "ds")
    (folder / "events-1.jsonl.1").write_bytes(line(user=9, experiments={"AB": "T2"}) + b"\n")
    export.export([tmp_path / "logs"], tmp_path / "ds")
    data = read(tmp_path / "ds").sort_values("user")
    assert data[["user", "exp_AB", "exp_COLLECT"]].values.tolist() == [
        [7, None, "C"],
        [9, "T2", None],
    ]


def test_cli(logs, tmp_path):
    runner = CliRunner()
    done = runner.invoke(export.cli, [str(logs), "--out", str(tmp_path / "ds")])
    assert done.exit_code == 0, done.output
    assert (
        "users" in done.stdout
        and "events per arm  AB: C=" in done.stdout
        and "bad lines       0" in done.stdout
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    done = runner.invoke(export.cli, [str(empty), "--out", str(tmp_path / "ds2")])
    assert done.exit_code == 1 and "no event logs" in done.stderr
    done = runner.invoke(export.cli, [str(tmp_path / "nowhere"), "--out", str(tmp_path / "ds2")])
    assert done.exit_code == 1
    assert runner.invoke(export.cli, [str(logs)]).exit_code == 2  # no --out: usage


def test_only_bad_lines_is_an_error_but_quarantined(tmp_path):
    folder = tmp_path / "logs" / "recommender-1"
    folder.mkdir(parents=True)
    (folder / "events-1.jsonl").write_text("garbage\n")
    done = CliRunner().invoke(export.cli, [str(tmp_path / "logs"), "--out", str(tmp_path / "ds")])
    assert done.exit_code == 1 and "no valid event" in done.stderr
    assert (tmp_path / "ds" / export.QUARANTINE).exists()


def test_old_lines_without_propensity_export_beside_new_ones(tmp_path):
    """A log written before `propensity` (and `fallback`) existed exports, its propensity null;
    new lines keep theirs, and a dataset exported before the column existed merges with them."""
    old = tmp_path / "old" / "events-1.jsonl"
    old.parent.mkdir()
    old.write_bytes(
        line(user=1) + b"\n" + line(user=2, message="last", recommendation=None) + b"\n"
    )
    new = tmp_path / "new" / "events-2.jsonl"
    new.parent.mkdir()
    new.write_bytes(line(user=3, propensity=0.02, fallback=True) + b"\n")
    out = tmp_path / "ds"
    export.export([old.parent], out)
    before = pq.read_table(out / export.DATA_FILE)
    pq.write_table(before.drop_columns(["propensity"]), out / export.DATA_FILE)  # an old dataset
    summary = export.export([new.parent], out)
    assert summary.bad_lines == 0 and summary.events == 3
    data = read(out).sort_values("user")
    assert data["propensity"].isna().tolist() == [True, True, False]
    assert data["propensity"].iloc[2] == 0.02
    assert data["fallback"].tolist() == [False, False, True]
