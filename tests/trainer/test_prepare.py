from __future__ import annotations

import json
from collections import Counter

import pandas as pd
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import PREFIX
from tests.trainer.conftest import events_frame
from trainer.cli import cli
from trainer.prepare import k_core, liked_plays, prepare


def chains(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": [u for u, _ in pairs],
            "track": [t for _, t in pairs],
            "timestamp": range(len(pairs)),
        }
    )


def as_set(frame: pd.DataFrame) -> set[tuple]:
    return set(zip(frame["user"], frame["track"], strict=True))


def test_liked_plays_keeps_next_and_last_above_threshold_in_time_order():
    events = events_frame(
        [
            ("next", 5000, 1, 10, 0.9),
            ("last", 3000, 1, 11, 1.0),  # last event: its heard track counts too
            ("next", 4000, 1, 12, 0.8),  # not strictly above 0.8
            ("next", 1000, 2, 13, 0.81),
            ("next", 1000, 2, 14, 0.95),  # same timestamp: log order kept
            ("next", 2000, 2, 15, 0.1),
        ]
    )
    liked = liked_plays(events, min_time=0.8)
    assert liked.to_dict("list") == {
        "user": [1, 1, 2, 2],
        "track": [11, 10, 13, 14],
        "timestamp": [3000, 5000, 1000, 1000],
    }
    assert liked_plays(events, min_time=0.5)["track"].tolist() == [11, 12, 10, 13, 14]


def test_k_core_iterates_to_the_fixed_point():
    core = [(u, t) for u in ("u1", "u2", "u3") for t in ("a", "b", "c")]
    # x has 2 likes -> dropped; then u4 has 2 -> dropped; then d has 2 -> dropped.
    extra = [("u1", "d"), ("u2", "d"), ("u4", "d"), ("u4", "a"), ("u4", "x"), ("u5", "x")]
    extra += [("u5", "y"), ("u5", "z")]
    result = k_core(chains(core + extra), k=3)
    assert as_set(result) == set(core)
    one_pass = chains(core + extra)
    one_pass = one_pass[
        (one_pass.groupby("user")["user"].transform("size") >= 3)
        & (one_pass.groupby("track")["track"].transform("size") >= 3)
    ]
    assert ("u1", "d") in as_set(one_pass)  # a single pass would have kept it


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), max_size=80), st.integers(1, 4))
def test_k_core_matches_a_row_by_row_reference(pairs, k):
    result = k_core(chains(pairs), k)
    if len(result):
        assert result.groupby("user").size().min() >= k
        assert result.groupby("track").size().min() >= k
    assert sorted(zip(result["user"], result["track"], strict=True)) == sorted(
        reference_core(pairs, k)
    )


def reference_core(pairs: list[tuple], k: int) -> list[tuple]:
    """Remove one under-supported row at a time until none is left (slow, obviously right)."""
    rows = list(pairs)
    while True:
        users, tracks = Counter(u for u, _ in rows), Counter(t for _, t in rows)
        bad = [i for i, (u, t) in enumerate(rows) if users[u] < k or tracks[t] < k]
        if not bad:
            return rows
        del rows[bad[0]]


def test_prepare_writes_recbole_atomic_file(tmp_path):
    rows = [
        ("next", 1000 + i, u, t, 0.9)
        for i, (u, t) in enumerate((u, t) for u in (1, 2, 3) for t in (7, 8, 9))
    ]
    rows.append(("next", 1000, 1, 9, 0.95))  # same user, same ms as (1, 7): a tie
    rows.append(("next", 2000, 4, 7, 0.99))  # user 4: one like only -> filtered
    events_frame(rows).to_parquet(tmp_path / "events.parquet")
    summary = prepare(tmp_path / "events.parquet", tmp_path / "ds")
    assert (summary.interactions, summary.users, summary.tracks) == (10, 3, 3)
    lines = (tmp_path / "ds" / "ds.inter").read_text().splitlines()
    assert lines[0] == "user_id:token\titem_id:token\ttimestamp:float"
    # the timestamp is the position in the chain; a tie keeps log order
    assert lines[1:5] == ["1\t7\t0.000000", "1\t9\t1.000000", "1\t8\t2.000000", "1\t9\t3.000000"]
    assert len(lines) == 11
    meta = json.loads((tmp_path / "ds" / "prepare.json").read_text())
    assert meta["min_time"] == 0.8 and meta["k"] == 3 and meta["interactions"] == 10


def test_prepare_cli_prints_counts_and_fails_clearly_on_empty_result(tmp_path):
    events_frame([("next", 1, 1, 1, 0.9)]).to_parquet(tmp_path / "few.parquet")
    result = CliRunner().invoke(
        cli, ["prepare", "--data", str(tmp_path / "few.parquet"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "no interactions left" in result.output
    rows = [
        ("next", i, u, t, 0.9)
        for i, (u, t) in enumerate((u, t) for u in range(3) for t in range(3))
    ]
    events_frame(rows).to_parquet(tmp_path / "ok.parquet")
    result = CliRunner().invoke(
        cli, ["prepare", "--data", str(tmp_path / "ok.parquet"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert "interactions: 9  users: 3  tracks: 3" in result.output


def test_too_little_data_is_refused_and_nothing_changes(tmp_path, redis_url, redis_client):
    """One listener replaying one track passes a 3-core of plays, yet is nothing to learn from:
    `prepare` and `run` refuse with the counts, write no dataset and deploy nothing."""
    rows = [("next", 1000 + i, 5, 42, 0.95) for i in range(20)]  # user 5 replays track 42
    rows += [("next", 5000 + i, 6, i, 0.9) for i in range(2)]  # filtered by the k-core
    events_frame(rows).to_parquet(tmp_path / "one.parquet")
    data = ["--data", str(tmp_path / "one.parquet")]
    result = CliRunner().invoke(cli, ["prepare", *data, "--out", str(tmp_path / "ds")])
    assert result.exit_code == 1
    assert "too little data to train on: 1 user(s) and 1 track(s)" in result.output
    assert "at least 3 of each" in result.output
    assert not (tmp_path / "ds").exists()

    redis_client.set(f"{PREFIX}:lists:core:active", "v-before")
    result = CliRunner().invoke(
        cli, ["run", *data, "--work", str(tmp_path / "w"), "--redis-url", redis_url]
    )
    assert result.exit_code == 1 and "too little data" in result.output
    assert not (tmp_path / "w").exists()
    assert redis_client.keys("*") == [f"{PREFIX}:lists:core:active".encode()]
    assert redis_client.get(f"{PREFIX}:lists:core:active") == b"v-before"
