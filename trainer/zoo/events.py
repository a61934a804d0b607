"""The exported events as the seminars read them: every play, in each user's order, in sessions.

`python -m script.export` writes one Parquet dataset; the course's notebooks read the logs'
`data.json` into pandas the same way. A play is an event: `next` reports the track just heard
(the session's first track too, with time 1.0) and `last` the session's final one. A session
ends at its `last` event.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["message", "timestamp", "user", "track", "time"]


def read_events(data: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Plays sorted by user, then time; ties keep the log's order (a stable sort)."""
    events = data if isinstance(data, pd.DataFrame) else pd.read_parquet(data, columns=COLUMNS)
    events = events.loc[events["message"].isin(("next", "last")), COLUMNS]
    events = events.astype({"user": "int64", "track": "int64", "timestamp": "int64",
                            "time": "float64"})  # fmt: skip
    if events.empty:
        raise ValueError("no plays in the data: collect logs first")
    return events.sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)


def session_starts(events: pd.DataFrame) -> np.ndarray:
    """True for each session's first play (`read_events` order): a user's first event, or the
    event after that user's `last`."""
    user = events["user"].to_numpy()
    last = events["message"].to_numpy() == "last"
    starts = np.ones(len(events), dtype=bool)
    starts[1:] = (user[1:] != user[:-1]) | last[:-1]
    return starts


def catalogue_ids(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct ids, each value's index among them)."""
    ids, index = np.unique(values, return_inverse=True)
    return ids, index.astype(np.int64)
