"""Events -> sessions -> user-level metrics, and the per-arm summaries the statistics start from.

Definitions follow the course notebook (anokhin/recsys-course-spring-2024, Week1Seminar): a
user's events, ordered by timestamp, form sessions that end at a ``last`` event (events after a
user's final ``last`` belong to no finished session and are not counted); per session the tracks
(events), the summed ``time`` and the summed latency in ms; per user (and arm): ``time`` (sum over
sessions), ``sessions``, ``mean_request_latency`` (latency / tracks, ms),
``mean_tracks_per_session`` and ``mean_time_per_session``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from botify.event_schema import EXPERIMENT_PREFIX
from script.ab.cuped import CupedSample
from script.ab.errors import ReportError
from script.ab.stats import SampleMean

METRICS = (
    "time",
    "sessions",
    "mean_request_latency",
    "mean_tracks_per_session",
    "mean_time_per_session",
)
LOWER_IS_BETTER = frozenset({"mean_request_latency"})


def known_experiments(data: Path) -> list[str]:
    return sorted(
        name.removeprefix(EXPERIMENT_PREFIX)
        for name in ds.dataset(data, format="parquet").schema.names
        if name.startswith(EXPERIMENT_PREFIX)
    )


def _open(data: Path) -> ds.Dataset:
    if not data.exists():
        raise ReportError(f"no dataset at {data}")
    try:
        dataset = ds.dataset(data, format="parquet")
    except (OSError, ValueError) as error:
        raise ReportError(f"cannot read {data} as Parquet: {error}") from error
    if dataset.count_rows() == 0:
        raise ReportError(f"the dataset at {data} has no events")
    return dataset


def _window(since_ms: int | None, until_ms: int | None):
    window = None
    if since_ms is not None:
        window = ds.field("timestamp") >= since_ms
    if until_ms is not None:
        upper = ds.field("timestamp") < until_ms
        window = upper if window is None else window & upper
    return window


def load_events(
    data: Path, experiment: str, since_ms: int | None = None, until_ms: int | None = None
) -> pd.DataFrame:
    """The columns the report needs, ``arm`` for the experiment; rows without an arm dropped.

    ``since_ms``/``until_ms`` keep events with ``since_ms <= timestamp < until_ms`` (e.g. one day
    of a dataset that holds several). A dataset exported before events logged ``fallback`` reads
    as if every event had logged it false.
    """
    dataset = _open(data)
    experiments = known_experiments(data)
    if experiment not in experiments:
        listed = ", ".join(experiments) or "none"
        raise ReportError(f"unknown experiment {experiment!r}; the data has: {listed}")
    columns = ["message", "timestamp", "user", "time", "latency", EXPERIMENT_PREFIX + experiment]
    has_fallback = "fallback" in dataset.schema.names
    if has_fallback:
        columns.append("fallback")
    window = _window(since_ms, until_ms)
    table = dataset.to_table(columns=columns, filter=window)
    events = table.to_pandas().rename(columns={EXPERIMENT_PREFIX + experiment: "arm"})
    events["fallback"] = events["fallback"].fillna(False).astype(bool) if has_fallback else False
    events = events[events["arm"].notna()]
    if events.empty:
        within = "" if window is None else " in the selected time window"
        raise ReportError(f"no event{within} logged an arm of experiment {experiment!r}")
    return events


def activity_metrics(
    data: Path, until_ms: int | None = None, since_ms: int | None = None
) -> pd.DataFrame:
    """Each user's metrics over every event in ``[since_ms, until_ms)``, whatever experiment it
    logged (before the report's ``--since``: CUPED's covariate). One row per user with a finished
    session there."""
    columns = ["message", "timestamp", "user", "time", "latency"]
    table = _open(data).to_table(columns=columns, filter=_window(since_ms, until_ms))
    events = table.to_pandas()
    events["arm"] = "pre"
    if events.empty:
        return pd.DataFrame(columns=["user", *METRICS])
    return user_metrics(events).drop(columns="arm")


def _with_means(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the per-session means to per-user sums (tracks, time, sessions)."""
    frame["mean_tracks_per_session"] = frame["tracks"] / frame["sessions"]
    frame["mean_time_per_session"] = frame["time"] / frame["sessions"]
    return frame


def user_metrics(events: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, arm) that finished at least one session, with the course's metrics."""
    arm_codes, arms = pd.factorize(events["arm"], sort=True)
    users = events["user"].to_numpy()
    timestamps = events["timestamp"].to_numpy()
    # group by (arm, user) and order by timestamp; a stable sort keeps file order on ties
    order = np.lexsort((timestamps, users, arm_codes))
    arm_sorted, user_sorted = arm_codes[order], users[order]
    is_last = (events["message"].to_numpy() == "last")[order]
    group_start = np.r_[
        True, (arm_sorted[1:] != arm_sorted[:-1]) | (user_sorted[1:] != user_sorted[:-1])
    ]
    group = np.cumsum(group_start) - 1
    # an event counts only if a 'last' of its user follows (or is) it: the notebook drops the rest
    lasts_from_here = np.cumsum(is_last[::-1])[::-1]
    group_end = np.r_[np.flatnonzero(group_start)[1:], len(order)]
    lasts_after_group = np.r_[lasts_from_here, 0][group_end][group]
    finished = lasts_from_here - lasts_after_group > 0
    if not finished.any():
        return pd.DataFrame(columns=["user", "arm", *METRICS])

    kept, member = order[finished], group[finished]
    n_groups = group[-1] + 1
    tracks = np.bincount(member, minlength=n_groups)
    sessions = np.bincount(member, weights=is_last[finished], minlength=n_groups).astype(np.int64)
    listened = np.bincount(member, weights=events["time"].to_numpy()[kept], minlength=n_groups)
    latency_ms = np.bincount(
        member, weights=events["latency"].to_numpy()[kept] * 1000, minlength=n_groups
    )
    starts = np.flatnonzero(group_start)
    frame = pd.DataFrame(
        {
            "user": user_sorted[starts],
            "arm": np.asarray(arms)[arm_sorted[starts]],
            "tracks": tracks,
            "time": listened,
            "latency": latency_ms,
            "sessions": sessions,
        }
    )
    frame = frame[frame["sessions"] > 0].reset_index(drop=True)
    frame["mean_request_latency"] = frame["latency"] / frame["tracks"]
    return _with_means(frame)[["user", "arm", *METRICS]]


def users_from_sessions(users, times, tracks) -> pd.DataFrame:
    """Per-session arrays (user, summed time, tracks) -> the same user-level metrics as
    `user_metrics` (no latency): for the simulator, whose sessions are already cut."""
    users, times, tracks = (np.asarray(a) for a in (users, times, tracks))
    if not len(users) == len(times) == len(tracks):
        raise ValueError("users, times and tracks must have one value per session each")
    ids, member = np.unique(users, return_inverse=True)
    frame = pd.DataFrame(
        {
            "user": ids,
            "tracks": np.bincount(member, weights=tracks, minlength=len(ids)),
            "time": np.bincount(member, weights=times, minlength=len(ids)),
            "sessions": np.bincount(member, minlength=len(ids)),
        }
    )
    return _with_means(frame)[["user", *(m for m in METRICS if m in frame)]]


def summarize(metrics: pd.DataFrame, names: tuple[str, ...] = METRICS) -> dict:
    """Per arm and metric, the summary statistics the statistical tests start from:
    ``{arm: {metric: SampleMean}}``. Summaries of disjoint sets of users add up (`+`)."""
    return {
        str(arm): {
            name: SampleMean.of(part[name].to_numpy(float)) for name in names if name in part
        }
        for arm, part in metrics.groupby("arm", sort=True)
    }


def summarize_cuped(
    metrics: pd.DataFrame, pre: pd.DataFrame, names: tuple[str, ...] = METRICS
) -> dict:
    """Per arm and metric, CUPED's summary: the metric, the same metric in the pre-period
    (``pre``: one row per user; a user missing there counts 0, as gbstats) and their products:
    ``{arm: {metric: CupedSample}}``."""
    joined = metrics.merge(pre, on="user", how="left", suffixes=("", "_pre"))
    return {
        str(arm): {
            name: CupedSample.of(part[name].to_numpy(float), part[f"{name}_pre"].to_numpy(float))
            for name in names
            if name in part and f"{name}_pre" in part
        }
        for arm, part in joined.groupby("arm", sort=True)
    }


@dataclass(frozen=True)
class FallbackRate:
    """How many of an arm's `next` answers came from the fallback recommender."""

    next_events: int
    fallback_events: int
    rate: float | None  # None when the arm has no `next` event


def fallback_rates(events: pd.DataFrame) -> dict[str, FallbackRate]:
    codes, arms = pd.factorize(events["arm"], sort=True)
    is_next = (events["message"] == "next").to_numpy()
    fallback = events["fallback"].to_numpy(dtype=bool)
    totals = np.bincount(codes[is_next], minlength=len(arms))
    hits = np.bincount(codes[is_next & fallback], minlength=len(arms))
    return {
        str(arm): FallbackRate(int(total), int(hit), hit / total if total else None)
        for arm, total, hit in zip(arms, totals, hits, strict=True)
    }
