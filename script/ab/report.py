"""One A/B report: load the events, cut user metrics, summarize per arm, compare, check.

`build_report` returns a `Report` (what `report.json` holds); `script.ab.render` writes it.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from script.ab.ceiling import Ceiling, CeilingResult, against_ceiling
from script.ab.errors import ReportError
from script.ab.metrics import (
    METRICS,
    FallbackRate,
    fallback_rates,
    load_events,
    summarize,
    user_metrics,
)
from script.ab.stats import (
    DEFAULT_SETTINGS,
    Effect,
    SampleMean,
    SampleRatio,
    SampleRatioTest,
    Settings,
    compare,
    compare_arms,
)

# An arm answering more of its `next` requests than this from the fallback is not quite the arm
# the experiment meant to test.
FALLBACK_WARNING = 0.05


def compare_all(
    metrics: pd.DataFrame, control: str, alpha: float, names: tuple[str, ...] = METRICS
) -> list[Effect]:
    """User metrics -> every arm against control on every metric, Holm-corrected."""
    return compare_arms(summarize(metrics, names), control, names, Settings(alpha=alpha))


def compare_arm(
    metric: str, arm: str, control: np.ndarray, treatment: np.ndarray, alpha: float
) -> Effect:
    """One arm against control from the users' values (no Holm: a single comparison)."""
    return compare(
        metric, arm, SampleMean.of(control), SampleMean.of(treatment), Settings(alpha=alpha)
    )


def sample_ratio(events: pd.DataFrame, settings: Settings = DEFAULT_SETTINGS) -> SampleRatio:
    """Users per arm (every user seen in the events) against an equal split."""
    users = events.drop_duplicates(["user", "arm"])["arm"].value_counts().sort_index()
    return SampleRatioTest({str(arm): int(n) for arm, n in users.items()}, settings).result()


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("botify", "numpy", "pandas", "pyarrow", "scipy", "statsmodels", "matplotlib"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


@dataclass
class Report:
    experiment: str
    control: str
    alpha: float
    data: str
    since_ms: int | None
    until_ms: int | None
    events: int
    users: int
    users_with_sessions: dict[str, int]
    sessions: int
    srm: SampleRatio
    effects: list[Effect]
    warnings: list[str]
    versions: dict[str, str]
    summaries: dict[str, dict[str, SampleMean]]  # arm -> metric -> n, sum, sum of squares
    fallback: dict[str, FallbackRate]  # arm -> share of its `next` events served by the fallback
    ceiling: CeilingResult | None = None
    seconds: float = 0.0


def build_report(
    data: Path,
    experiment: str,
    control: str = "C",
    alpha: float = 0.05,
    since_ms: int | None = None,
    until_ms: int | None = None,
    ceiling: Ceiling | None = None,
) -> Report:
    started = time.perf_counter()
    settings = Settings(alpha=alpha)
    events = load_events(data, experiment, since_ms, until_ms)
    arms = sorted(set(events["arm"]))
    if control not in arms:
        raise ReportError(
            f"control arm {control!r} not in experiment {experiment!r}; its arms: {', '.join(arms)}"
        )
    metrics = user_metrics(events)
    summaries = summarize(metrics)
    warnings = []
    srm = sample_ratio(events, settings)
    if srm.mismatch:
        warnings.append(
            f"sample ratio mismatch: users per arm {srm.users}, chi-square p = {srm.p_value:.2g} "
            f"< {settings.srm_threshold}; the split is not what the assignment promises, "
            "distrust the effects"
        )
    switched = events.groupby("user")["arm"].nunique()
    if (switched > 1).any():
        warnings.append(
            f"{int((switched > 1).sum())} user(s) appear in more than one arm (counted in each)"
        )
    fallback = fallback_rates(events)
    warnings += [
        f"{arm}: {rate.rate:.1%} of its `next` answers came from the fallback recommender "
        f"({rate.fallback_events:,} of {rate.next_events:,}; warning above "
        f"{FALLBACK_WARNING:.0%}): the arm tested is partly its fallback"
        for arm, rate in fallback.items()
        if rate.rate is not None and rate.rate > FALLBACK_WARNING
    ]
    effects = compare_arms(summaries, control, METRICS, settings)
    warnings += [f"{e.arm} / {e.metric}: {e.message}" for e in effects if e.status != "ok"]
    result = None
    if ceiling is not None:
        result = against_ceiling(ceiling, summaries, effects, control)
        warnings += list(ceiling.warnings)
    return Report(
        experiment=experiment,
        control=control,
        alpha=alpha,
        data=str(data),
        since_ms=since_ms,
        until_ms=until_ms,
        events=len(events),
        users=int(events["user"].nunique()),
        users_with_sessions={
            arm: int(n) for arm, n in metrics["arm"].value_counts().sort_index().items()
        },
        sessions=int((events["message"] == "last").sum()),
        srm=srm,
        effects=effects,
        warnings=warnings,
        versions=versions(),
        summaries=summaries,
        fallback=fallback,
        ceiling=result,
        seconds=time.perf_counter() - started,
    )
