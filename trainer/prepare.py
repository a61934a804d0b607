"""Events -> liked chains -> k-core -> a RecBole atomic dataset.

Which events count: every event carries `track`, the track the listener just heard, and `time`,
the fraction of it heard. A `next` event reports a heard track and asks for the next one; the
`last` event reports the session's final heard track. Both are plays, so both are used (keeping
only `next` would drop every session's last track). A play is *liked* when `time > min_time`.
Each user's liked plays, ordered by timestamp, form one chain across sessions (as in the seed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from botify.event_schema import MESSAGES

# The smallest dataset the trainer will learn from: after the k-core, at least this many distinct
# users and distinct tracks (or k, if larger). A k-core counts plays, so one user replaying one
# track passes it; a real k-core of distinct pairs has >= k of each, and leave-one-out then gives
# every user a training, a validation and a test play. Below it the lists would say nothing.
MIN_DISTINCT = 3
INTER_HEADER = "user_id:token\titem_id:token\ttimestamp:float"


@dataclass(frozen=True)
class PrepareSummary:
    interactions: int
    users: int
    tracks: int
    liked_plays: int  # before the k-core filter
    plays: int  # all plays read

    def line(self) -> str:
        return (
            f"interactions: {self.interactions:,}  users: {self.users:,}  tracks: {self.tracks:,}"
            f"  (liked plays before the k-core: {self.liked_plays:,} of {self.plays:,} plays)"
        )


def liked_plays(events: pd.DataFrame, min_time: float = 0.8) -> pd.DataFrame:
    """Plays with `time > min_time`, as (user, track, timestamp) sorted by user then time.

    The sort is stable, so plays with equal timestamps keep their order in the log.
    """
    plays = events[events["message"].isin(MESSAGES)]
    liked = plays.loc[plays["time"] > min_time, ["user", "track", "timestamp"]]
    liked = liked.astype({"user": "int64", "track": "int64", "timestamp": "int64"})
    return liked.sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)


def k_core(chains: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """Keep users and tracks with at least `k` interactions, repeated until nothing changes.

    Dropping a track can push a user below `k` and vice versa, so one pass is not enough.
    """
    while True:
        user_ok = chains.groupby("user")["user"].transform("size") >= k
        track_ok = chains.groupby("track")["track"].transform("size") >= k
        keep = user_ok & track_ok
        if keep.all():
            return chains.reset_index(drop=True)
        chains = chains[keep]


def to_atomic(chains: pd.DataFrame, out_dir: Path) -> Path:
    """Write `<out_dir>/<out_dir.name>.inter`, the file RecBole's `dataset=<name>` reads.

    The timestamp written is each play's position in its user's chain (0, 1, 2, ...): CORE uses
    only the order within a chain, distinct positions survive RecBole's unstable sort (equal
    timestamps keep log order), and the file no longer depends on when the events happened, so
    the same events logged on another day train the same model (RecBole's global sort by time
    otherwise reorders users' interactions with the wall clock, which changes the batches).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = chains.groupby("user").cumcount().to_numpy(dtype=np.float64)
    frame = pd.DataFrame({"u": chains["user"], "i": chains["track"], "t": stamp})
    path = out_dir / f"{out_dir.name}.inter"
    tmp = path.with_suffix(".inter.tmp")
    with tmp.open("w") as f:
        f.write(INTER_HEADER + "\n")
        frame.to_csv(f, sep="\t", header=False, index=False, float_format="%.6f")
    tmp.replace(path)
    return path


def prepare(
    data: str | Path, out_dir: str | Path, min_time: float = 0.8, k: int = 3
) -> PrepareSummary:
    """Read the exported Parquet dataset and write the RecBole dataset into `out_dir`."""
    out_dir = Path(out_dir)
    events = pd.read_parquet(data, columns=["message", "timestamp", "user", "track", "time"])
    liked = liked_plays(events, min_time)
    chains = k_core(liked, k)
    if chains.empty:
        raise ValueError(
            f"no interactions left after time > {min_time} and the {k}-core filter "
            f"({len(liked)} liked plays of {len(events)} events): collect more logs"
        )
    need = max(k, MIN_DISTINCT)
    users, tracks = chains["user"].nunique(), chains["track"].nunique()
    if users < need or tracks < need:
        raise ValueError(
            f"too little data to train on: {users} user(s) and {tracks} track(s) left after "
            f"time > {min_time} and the {k}-core ({len(chains)} interactions); at least {need} "
            f"of each are needed. Nothing was written: collect more logs"
        )
    to_atomic(chains, out_dir)
    summary = PrepareSummary(
        interactions=len(chains),
        users=users,
        tracks=tracks,
        liked_plays=len(liked),
        plays=int(events["message"].isin(MESSAGES).sum()),
    )
    meta = {"min_time": min_time, "k": k, "messages": list(MESSAGES), **asdict(summary)}
    (out_dir / "prepare.json").write_text(json.dumps(meta, indent=2) + "\n")
    return summary
