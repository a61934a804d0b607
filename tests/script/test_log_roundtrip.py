"""Writer and reader together: the service's EventLog rotates, the exporter reads, the report runs.

Each side used to test only its own idea of the rotation order (the writer named .1 the oldest,
the exporter read .1 as the newest). Here the events go through the service's real `EventLog`
with a small size limit, so every replica's log is cut into many parts, and timestamps are coarse
(one per minute), so a user's events tie on timestamp and only the order the files are read in
keeps them in order. Reading the parts newest first breaks the per-user order and the sessions.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from botify import logfiles
from botify.event_log import EventLog
from script import ab, export
from script.fake_logs import FakeLogSpec, fake_events, to_events


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("roundtrip")
    spec = FakeLogSpec(
        users=150, arms=("C", "T1"), effects={"T1": 1.3}, fallbacks={"T1": 0.3}, seed=21
    )
    events = fake_events(spec)
    events["timestamp"] = events["timestamp"] // 60_000 * 60_000  # ties within a user
    events["replica"] = "recommender-" + (events["user"] % 2 + 1).astype(str)
    rng = np.random.default_rng(0)
    for replica, part in events.groupby("replica", sort=True):
        log = EventLog(root / "logs" / replica, max_bytes=6_000)
        lines = to_events(part, "AB", replica)
        start = 0
        while start < len(lines):  # one request or a batch of a few, as the service writes
            size = int(rng.integers(1, 6))
            log.write(lines[start : start + size])
            start += size
        log.close()
    return root, events


def test_every_event_once_and_in_order_per_user(written):
    root, events = written
    for replica in ("recommender-1", "recommender-2"):
        names = [p.name for p in (root / "logs" / replica).iterdir()]
        assert all(logfiles.is_log_file(n) for n in names) and len(names) >= 10
    summary = export.export([root / "logs"], root / "ds")
    assert summary.bad_lines == 0 and summary.duplicates == 0
    data = pd.read_parquet(root / "ds")
    assert len(data) == len(events) == summary.events
    key = ["user", "timestamp", "track", "time", "message"]
    assert sorted(map(tuple, data[key].values.tolist())) == sorted(
        map(tuple, events[key].values.tolist())
    )
    for user, mine in data.groupby("user", sort=False):
        written_order = events.loc[events["user"] == user, "track"].tolist()
        assert mine["track"].tolist() == written_order, user
    assert data["fallback"].sum() == events["fallback"].sum() > 0


def test_the_report_on_the_exported_logs(written, tmp_path):
    root, events = written
    export.export([root / "logs"], root / "ds")
    assert ab.main(["--data", str(root / "ds"), "--experiment", "AB", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    expected = ab.summarize(ab.user_metrics(events))  # sessions from the events as written
    for arm, metrics in expected.items():
        for metric, summary in metrics.items():
            got = report["summaries"][arm][metric]
            assert got["n"] == summary.n
            assert got["sum"] == pytest.approx(summary.sum, rel=1e-12), (arm, metric)
    assert report["sessions"] == (events["message"] == "last").sum()
    nexts = events[(events["message"] == "next") & (events["arm"] == "T1")]
    assert report["fallback"]["T1"]["fallback_events"] == nexts["fallback"].sum()
    assert any(w.startswith("T1: ") and "fallback" in w for w in report["warnings"])
