"""The logged steps an estimate reads: every event of the selected users in each user's order,
and for each `next` step its propensity and its reward.

The reward of a `next` step is the `time` of the user's following event: the listen of the served
track (the simulator, like a listener, reports on the track it was served). A step whose following
event is missing (the log ends) or reports another track is kept for the replay (the candidate's
state must see what the user heard) but not estimated on; `LoggedSteps` counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from botify.event_schema import EXPERIMENT_PREFIX
from script.ab.metrics import time_window

COLUMNS = ["message", "timestamp", "user", "track", "time", "recommendation", "fallback"]


class OpeError(Exception):
    """Nothing to estimate from (said to the user as is, exit code 1)."""


@dataclass
class LoggedSteps:
    """`events`: message, user, track, time, recommendation, propensity, arm, in each user's
    order (users one after another). `estimable`: a boolean per event, true for the `next`
    steps an estimate uses (reward linked, propensity logged); `reward` holds their rewards."""

    events: pd.DataFrame
    estimable: np.ndarray
    reward: np.ndarray
    next_steps: int  # `next` events in the selection
    unlinked: int  # `next` steps whose following event is missing or reports another track
    no_propensity: int  # `next` steps logged without a propensity (logs from before the field)
    experiment: str | None


def load(
    data: Path,
    experiment: str | None = None,
    arms: tuple[str, ...] = (),
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> LoggedSteps:
    """The events of `data` (an exported dataset, `python -m script.export`) in
    [since_ms, until_ms), those of `arms` of `experiment` only when arms are given."""
    if not Path(data).exists():
        raise OpeError(f"no dataset at {data}")
    dataset = ds.dataset(data, format="parquet")
    names = dataset.schema.names
    known = sorted(
        n.removeprefix(EXPERIMENT_PREFIX) for n in names if n.startswith(EXPERIMENT_PREFIX)
    )
    if experiment is None and len(known) == 1:  # the arms to filter by and report support of
        experiment = known[0]
    if experiment is None and arms:
        raise OpeError(f"--arm needs --experiment: the data logs {', '.join(known) or 'none'}")
    if experiment is not None and experiment not in known:
        raise OpeError(f"unknown experiment {experiment!r}; the data has: {', '.join(known)}")
    columns = COLUMNS + (["propensity"] if "propensity" in names else [])
    columns += [EXPERIMENT_PREFIX + experiment] if experiment is not None else []
    events = dataset.to_table(columns=columns, filter=time_window(since_ms, until_ms)).to_pandas()
    if "propensity" not in events:
        events["propensity"] = np.nan
    events = events.rename(columns={EXPERIMENT_PREFIX + str(experiment): "arm"})
    if "arm" not in events:
        events["arm"] = None
    if arms:
        events = events[events["arm"].isin(arms)]
    if events.empty:
        raise OpeError(f"no events in {data} for the selection (arms {list(arms) or 'all'})")
    # each user's events in logged order (the dataset's order breaks timestamp ties)
    events = events.reset_index(drop=True)
    events["_row"] = np.arange(len(events))
    events = events.sort_values(["user", "timestamp", "_row"], ignore_index=True)
    events = events.drop(columns="_row")
    return link(events, experiment)


def link(events: pd.DataFrame, experiment: str | None = None) -> LoggedSteps:
    """Rewards and the estimable steps of events already in each user's order."""
    user = events["user"].to_numpy()
    is_next = (events["message"] == "next").to_numpy()
    same_user_after = np.r_[user[1:] == user[:-1], False]
    following_track = np.r_[events["track"].to_numpy()[1:], -1]
    following_time = np.r_[events["time"].to_numpy(dtype=np.float64)[1:], np.nan]
    recommendation = events["recommendation"].to_numpy(dtype=np.float64, na_value=np.nan)
    linked = is_next & same_user_after & (following_track == recommendation)
    propensity = events["propensity"].to_numpy(dtype=np.float64, na_value=np.nan)
    logged = np.isfinite(propensity) & (propensity > 0)
    estimable = linked & logged
    return LoggedSteps(
        events=events,
        estimable=estimable,
        reward=np.where(estimable, following_time, np.nan),
        next_steps=int(is_next.sum()),
        unlinked=int((is_next & ~linked).sum()),
        no_propensity=int((is_next & linked & ~logged).sum()),
        experiment=experiment,
    )
