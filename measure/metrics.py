"""The course's metrics: events -> sessions -> user-level metrics, and per-group summaries.

Definitions follow the course notebook (anokhin/recsys-course-spring-2024, Week1Seminar): a
user's events, ordered by timestamp, form sessions that end at a ``last`` event (events after a
user's final ``last`` belong to no finished session and are not counted); per session the tracks
(events), the summed ``time`` and the summed latency in ms; per user (and arm): ``time`` (sum over
sessions), ``sessions``, ``mean_request_latency`` (latency / tracks, ms),
``mean_tracks_per_session`` and ``mean_time_per_session``. The simulator, whose sessions are
already cut, gets the same metrics from per-session arrays (`users_from_sessions`): calibration,
the ceiling and the A/B report count alike.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from measure.stats import SampleMean

METRICS = (
    "time",
    "sessions",
    "mean_request_latency",
    "mean_tracks_per_session",
    "mean_time_per_session",
)
LOWER_IS_BETTER = frozenset({"mean_request_latency"})


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
