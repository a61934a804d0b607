"""One A/B report: load the events, cut user metrics, summarize per arm, compare, check.

`build_report` returns a `Report` (what `report.json` holds); `script.ab.render` writes it. Beside
the plain comparison it runs, where asked or possible:

- CUPED (`cuped="auto"`: on when the dataset has events before ``since_ms``): each metric's value
  in the pre-period (every event in ``[pre_since_ms, pre_until_ms)``, by default everything
  before ``since_ms``) is the covariate. The pre-period must end before any user saw a
  treatment (a later A/B day: ``pre_until_ms`` = the first A/B day's start), else the covariate
  carries part of the effect and CUPED removes it;
- the sequential view (`sequential=True`): always-valid intervals, recomputed at ``looks``
  equally spaced times of the window, and the look at which each arm would have stopped;
- guardrails and the decision metric from the experiment config (`script.ab.config`), and the
  sample-ratio check against the config's weights.
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from measure.metrics import METRICS, summarize, user_metrics
from measure.stats import (
    DEFAULT_SETTINGS,
    SampleMean,
    SampleRatio,
    SampleRatioTest,
    Settings,
)
from script.ab.ceiling import Ceiling, CeilingResult, against_ceiling
from script.ab.compare import Effect, compare, compare_arms
from script.ab.config import Analysis
from script.ab.cuped import CupedSample
from script.ab.errors import ReportError
from script.ab.guardrails import GuardrailResult, check_all
from script.ab.metrics import (
    FallbackRate,
    activity_metrics,
    fallback_rates,
    load_events,
    summarize_cuped,
)
from script.ab.reference import Reference, ReferenceRow, against_reference
from script.ab.sequential import DEFAULT_TUNING

CUPED_MODES = ("auto", "on", "off")

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


def sample_ratio(
    events: pd.DataFrame,
    settings: Settings = DEFAULT_SETTINGS,
    weights: dict[str, float] | None = None,
) -> SampleRatio:
    """Users per arm (every user seen in the events) against the weights (equal by default)."""
    users = events.drop_duplicates(["user", "arm"])["arm"].value_counts().sort_index()
    counts = {str(arm): int(n) for arm, n in users.items()}
    return SampleRatioTest(counts, settings, weights).result()


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("botify", "numpy", "pandas", "pyarrow", "scipy", "statsmodels", "matplotlib"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


@dataclass
class CupedInfo:
    """Whether CUPED ran, why, and how many users had a pre-period."""

    enabled: bool
    reason: str
    pre_since_ms: int | None = None
    pre_until_ms: int | None = None
    users_with_pre: dict[str, int] = field(default_factory=dict)  # per arm (finished sessions)
    users_without_pre: dict[str, int] = field(default_factory=dict)


@dataclass
class Look:
    """One look of the sequential view: the window up to ``until_ms``, and the decision metric."""

    look: int
    until_ms: int
    users: dict[str, int]  # users with a finished session per arm, so far
    effects: dict[str, dict[str, float | bool | None]]  # arm -> effect_pct, bounds, p, significant


@dataclass
class SequentialInfo:
    tuning: float
    start_ms: int  # the first event of the window: looks are counted from here
    looks: list[Look]
    stops: dict[str, dict | None]  # arm -> {look, until_ms, direction} or None (never stopped)


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
    decision: str = "mean_time_per_session"
    config: str | None = None  # the experiments config read (weights, guardrails)
    weights: dict[str, float] | None = None  # the split the sample-ratio check expects
    cuped: CupedInfo | None = None
    cuped_summaries: dict[str, dict[str, CupedSample]] | None = None
    sequential: SequentialInfo | None = None
    guardrails: list[GuardrailResult] = field(default_factory=list)
    power: float = 0.8
    reference_label: str | None = None  # effects measured elsewhere (script.ab.reference)
    reference: list[ReferenceRow] | None = None


def _cuped_plan(
    data: Path,
    mode: str,
    since_ms: int | None,
    pre_since_ms: int | None,
    pre_until_ms: int | None,
) -> tuple[CupedInfo, pd.DataFrame | None]:
    if mode not in CUPED_MODES:
        raise ValueError(f"cuped is one of {CUPED_MODES}, not {mode!r}")
    if mode == "off":
        return CupedInfo(False, "off (--cuped off)"), None
    until = pre_until_ms if pre_until_ms is not None else since_ms
    if until is None:
        if mode == "on":
            raise ReportError("CUPED needs a pre-period: give --since (events before it)")
        return CupedInfo(False, "off: no pre-period (the report starts at the data's start)"), None
    if since_ms is not None and until > since_ms:
        raise ReportError("the pre-period must end before the experiment window (--pre-until)")
    pre = activity_metrics(data, until, pre_since_ms)
    if pre.empty:
        if mode == "on":
            raise ReportError(f"CUPED: no finished session in the pre-period (before {until} ms)")
        return CupedInfo(False, "off: no finished session in the pre-period"), None
    return CupedInfo(True, "on", pre_since_ms, until), pre


def _summaries(metrics: pd.DataFrame, pre: pd.DataFrame | None) -> dict:
    return summarize(metrics) if pre is None else summarize_cuped(metrics, pre)


def _look_times(events: pd.DataFrame, looks: int) -> list[int]:
    """The end (exclusive) of each look's window: equal steps from the first event to the last."""
    start, end = int(events["timestamp"].min()), int(events["timestamp"].max()) + 1
    return [start + math.ceil(k * (end - start) / looks) for k in range(1, looks + 1)]


def _sequential_view(
    events: pd.DataFrame,
    pre: pd.DataFrame | None,
    control: str,
    decision: str,
    settings: Settings,
    looks: int,
) -> tuple[SequentialInfo, dict[tuple[str, str], int]]:
    """The always-valid effects at each look; the first look each (arm, metric) excluded 0."""
    first: dict[tuple[str, str], int] = {}
    stops: dict[str, dict | None] = {}
    records = []
    for index, until in enumerate(_look_times(events, looks), start=1):
        metrics = user_metrics(events[events["timestamp"] < until])
        if metrics.empty:
            records.append(Look(index, until, {}, {}))
            continue
        summaries = _summaries(metrics, pre)
        effects = _compare_plain(summaries, control, settings)
        for e in effects:
            if e.significant and (e.arm, e.metric) not in first:
                first[(e.arm, e.metric)] = index
            if e.metric == decision and e.significant and e.arm not in stops:
                direction = "up" if (e.diff or 0) > 0 else "down"
                stops[e.arm] = {"look": index, "until_ms": until, "direction": direction}
        users = {a: int(n) for a, n in metrics["arm"].value_counts().sort_index().items()}
        decided = {
            e.arm: {
                "effect_pct": e.effect_pct, "lower_pct": e.lower_pct, "upper_pct": e.upper_pct,
                "p_value": e.p_value, "significant": e.significant,
            }
            for e in effects
            if e.metric == decision
        }  # fmt: skip
        records.append(Look(index, until, users, decided))
    arms = sorted(set(events["arm"]) - {control})
    start = int(events["timestamp"].min())
    return SequentialInfo(settings.tuning, start, records, {a: stops.get(a) for a in arms}), first


def _compare_plain(summaries: dict, control: str, settings: Settings) -> list[Effect]:
    """Every arm and metric, no Holm (the looks' stop rule reads each interval on its own)."""
    empty = {metric: SampleMean() for metric in METRICS}
    base = summaries.get(control, empty)
    return [
        compare(metric, arm, base.get(metric), summaries[arm].get(metric), settings)
        for arm in sorted(set(summaries) - {control})
        for metric in METRICS
    ]


def build_report(
    data: Path,
    experiment: str,
    control: str = "C",
    alpha: float = 0.05,
    since_ms: int | None = None,
    until_ms: int | None = None,
    ceiling: Ceiling | None = None,
    *,
    analysis: Analysis | None = None,
    cuped: str = "auto",
    pre_since_ms: int | None = None,
    pre_until_ms: int | None = None,
    sequential: bool = False,
    sequential_view: bool = False,
    looks: int = 1,
    tuning: float = DEFAULT_TUNING,
    power: float = 0.8,
    reference: Reference | None = None,
) -> Report:
    started = time.perf_counter()
    analysis = analysis or Analysis(experiment)
    if looks < 1:
        raise ValueError("looks must be at least 1")
    settings = Settings(alpha=alpha, sequential=sequential, tuning=tuning, power=power)
    events = load_events(data, experiment, since_ms, until_ms)
    arms = sorted(set(events["arm"]))
    if control not in arms:
        raise ReportError(
            f"control arm {control!r} not in experiment {experiment!r}; its arms: {', '.join(arms)}"
        )
    cuped_info, pre = _cuped_plan(data, cuped, since_ms, pre_since_ms, pre_until_ms)
    metrics = user_metrics(events)
    summaries = summarize(metrics)
    cuped_summaries = summarize_cuped(metrics, pre) if pre is not None else None
    if pre is not None:
        has_pre = metrics["user"].isin(pre["user"])
        cuped_info.users_with_pre = _per_arm(metrics[has_pre])
        cuped_info.users_without_pre = _per_arm(metrics[~has_pre])
    warnings = []
    srm = sample_ratio(events, settings, analysis.weights)
    if srm.mismatch:
        expected = "the configured weights" if analysis.weights else "an equal split"
        warnings.append(
            f"sample ratio mismatch: users per arm {srm.users}, chi-square p = {srm.p_value:.2g} "
            f"< {settings.srm_threshold} against {expected}; the split is not what the "
            "assignment promises, distrust the effects"
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
    effects = compare_arms(cuped_summaries or summaries, control, METRICS, settings)
    warnings += [f"{e.arm} / {e.metric}: {e.message}" for e in effects if e.message]
    sequential_info = None
    if sequential or sequential_view:  # the looks always use always-valid intervals
        sequential_info, first = _sequential_view(
            events, pre, control, analysis.decision, replace(settings, sequential=True), looks
        )
        for e in effects:
            e.stop_look = first.get((e.arm, e.metric))
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
        users_with_sessions=_per_arm(metrics),
        sessions=int((events["message"] == "last").sum()),
        srm=srm,
        effects=effects,
        warnings=warnings,
        versions=versions(),
        summaries=summaries,
        fallback=fallback,
        ceiling=result,
        seconds=time.perf_counter() - started,
        decision=analysis.decision,
        config=analysis.source,
        weights=analysis.weights,
        cuped=cuped_info,
        cuped_summaries=cuped_summaries,
        sequential=sequential_info,
        guardrails=check_all(analysis.guardrails, effects),
        power=power,
        reference_label=reference.label if reference else None,
        reference=against_reference(reference, effects) if reference else None,
    )


def _per_arm(metrics: pd.DataFrame) -> dict[str, int]:
    return {str(arm): int(n) for arm, n in metrics["arm"].value_counts().sort_index().items()}
