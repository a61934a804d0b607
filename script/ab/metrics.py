"""The dataset's events for the report: loading them (one experiment, a time window), each user's
metrics over all events (CUPED's pre-period), CUPED's summaries, and each arm's fallback rate.

The metrics themselves (the course notebook's definitions) are `measure.metrics`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from botify.event_schema import EXPERIMENT_PREFIX
from measure.metrics import METRICS, user_metrics
from script.ab.cuped import CupedSample
from script.ab.errors import ReportError


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


def time_window(since_ms: int | None, until_ms: int | None):
    """The Parquet filter `since_ms <= timestamp < until_ms` (either bound may be None)."""
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
    window = time_window(since_ms, until_ms)
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
    table = _open(data).to_table(columns=columns, filter=time_window(since_ms, until_ms))
    events = table.to_pandas()
    events["arm"] = "pre"
    if events.empty:
        return pd.DataFrame(columns=["user", *METRICS])
    return user_metrics(events).drop(columns="arm")


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
