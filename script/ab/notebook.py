"""The course notebook's user metrics, computed as the notebook does (row by row, `iterrows`).

Not used by the report: `measure.metrics.user_metrics` is the vectorized computation. This is
the independent reference it is tested against (tests/script/test_ab.py) and the peer
bench/bench_export.py times it against.
"""

from __future__ import annotations

from collections import namedtuple

import pandas as pd

from measure.metrics import METRICS


def notebook_user_metrics(data: pd.DataFrame) -> pd.DataFrame:
    """The course notebook's computation (row by row), as an independent reference."""
    Session = namedtuple("Session", ["timestamp", "tracks", "time", "latency"])
    sessions = []
    for (user, arm), user_data in data.groupby(["user", "arm"]):
        session = None
        for _, row in user_data.sort_values("timestamp").iterrows():
            if session is None:
                session = Session(row["timestamp"], 0, 0, 0)
            session = session._replace(
                tracks=session.tracks + 1,
                time=session.time + row["time"],
                latency=session.latency + row["latency"] * 1000,
            )
            if row["message"] == "last":
                sessions.append({"user": user, "arm": arm, **session._asdict()})
                session = None
    users = (
        pd.DataFrame(sessions)
        .groupby(["user", "arm"])
        .agg(sessions=("timestamp", "count"), tracks=("tracks", "sum"), time=("time", "sum"),
             latency=("latency", "sum"))
        .reset_index()
    )  # fmt: skip
    users["mean_request_latency"] = users["latency"] / users["tracks"]
    users["mean_tracks_per_session"] = users["tracks"] / users["sessions"]
    users["mean_time_per_session"] = users["time"] / users["sessions"]
    return users[["user", "arm", *METRICS]]
