"""The A/B report: events -> sessions -> user-level metrics -> each arm against control.

    python -m script.ab --data DATASET --experiment AB --out DIR [--alpha 0.05] [--control C]
                        [--since MS] [--until MS]

Definitions follow the course notebook (anokhin/recsys-course-spring-2024, Week1Seminar):
a user's events, ordered by timestamp, form sessions that end at a ``last`` event (events after
a user's final ``last`` belong to no finished session and are not counted); per session the
tracks (events), the summed ``time`` and the summed latency in ms; per user (and arm):
``time`` (sum over sessions), ``sessions``, ``mean_request_latency`` (latency / tracks, ms),
``mean_tracks_per_session`` and ``mean_time_per_session``. Each metric of each arm is compared
with control by Welch's t: the interval for the difference of means is the course's
``t.ppf(1 - alpha/2, welch_dof) * sqrt(s2_c/n_c + s2_t/n_t)``, computed by statsmodels, and
shown in % of the control mean; Holm's correction over all arm x metric comparisons is reported
beside the raw p-values; a chi-square test on users per arm checks the sample ratio (equal split
expected, as the hash assignment gives).

Exit codes: 0 report written, 1 data problem (no data, unknown experiment or control arm),
2 usage. A comparison that cannot be computed (too few users, no variance, zero control mean)
gets a status and a message in the report instead of numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

METRICS = (
    "time",
    "sessions",
    "mean_request_latency",
    "mean_tracks_per_session",
    "mean_time_per_session",
)
LOWER_IS_BETTER = frozenset({"mean_request_latency"})
SRM_THRESHOLD = 0.001
EXPERIMENT_PREFIX = "exp_"


class ReportError(Exception):
    """The report cannot be made from this input (CLI exit code 1)."""


@dataclass
class Effect:
    arm: str
    metric: str
    control_users: int
    treatment_users: int
    control_mean: float | None = None
    treatment_mean: float | None = None
    diff: float | None = None
    diff_lower: float | None = None
    diff_upper: float | None = None
    effect_pct: float | None = None
    lower_pct: float | None = None
    upper_pct: float | None = None
    p_value: float | None = None
    significant: bool | None = None
    p_holm: float | None = None
    significant_holm: bool | None = None
    status: str = "ok"
    message: str = ""


@dataclass
class SampleRatio:
    users: dict[str, int]
    chi2: float
    p_value: float
    mismatch: bool


def known_experiments(data: Path) -> list[str]:
    return sorted(
        name.removeprefix(EXPERIMENT_PREFIX)
        for name in ds.dataset(data, format="parquet").schema.names
        if name.startswith(EXPERIMENT_PREFIX)
    )


def load_events(
    data: Path, experiment: str, since_ms: int | None = None, until_ms: int | None = None
) -> pd.DataFrame:
    """The columns the report needs, ``arm`` for the experiment; rows without an arm dropped.

    ``since_ms``/``until_ms`` keep events with ``since_ms <= timestamp < until_ms`` (e.g. one day
    of a dataset that holds several).
    """
    if not data.exists():
        raise ReportError(f"no dataset at {data}")
    try:
        dataset = ds.dataset(data, format="parquet")
    except (OSError, ValueError) as error:
        raise ReportError(f"cannot read {data} as Parquet: {error}") from error
    if dataset.count_rows() == 0:
        raise ReportError(f"the dataset at {data} has no events")
    experiments = known_experiments(data)
    if experiment not in experiments:
        listed = ", ".join(experiments) or "none"
        raise ReportError(f"unknown experiment {experiment!r}; the data has: {listed}")
    columns = ["message", "timestamp", "user", "time", "latency", EXPERIMENT_PREFIX + experiment]
    window = None
    if since_ms is not None:
        window = ds.field("timestamp") >= since_ms
    if until_ms is not None:
        upper = ds.field("timestamp") < until_ms
        window = upper if window is None else window & upper
    table = dataset.to_table(columns=columns, filter=window)
    events = table.to_pandas().rename(columns={EXPERIMENT_PREFIX + experiment: "arm"})
    events = events[events["arm"].notna()]
    if events.empty:
        within = "" if window is None else " in the selected time window"
        raise ReportError(f"no event{within} logged an arm of experiment {experiment!r}")
    return events


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
    frame["mean_tracks_per_session"] = frame["tracks"] / frame["sessions"]
    frame["mean_time_per_session"] = frame["time"] / frame["sessions"]
    return frame[["user", "arm", *METRICS]]


def welch(control: np.ndarray, treatment: np.ndarray, alpha: float) -> tuple[float, float, float]:
    """(lower, upper) of the difference treatment - control and the two-sided p-value."""
    compare = CompareMeans(DescrStatsW(treatment), DescrStatsW(control))
    lower, upper = compare.tconfint_diff(alpha=alpha, usevar="unequal")
    _, p_value, _ = compare.ttest_ind(usevar="unequal")
    return float(lower), float(upper), float(p_value)


def compare_arm(
    metric: str, arm: str, control: np.ndarray, treatment: np.ndarray, alpha: float
) -> Effect:
    effect = Effect(
        arm=arm, metric=metric, control_users=len(control), treatment_users=len(treatment)
    )
    if len(control) < 2 or len(treatment) < 2:
        effect.status = "too_few_users"
        effect.message = (
            f"needs at least 2 users with a finished session in each arm "
            f"(control {len(control)}, {arm} {len(treatment)})"
        )
        return effect
    effect.control_mean, effect.treatment_mean = float(control.mean()), float(treatment.mean())
    effect.diff = effect.treatment_mean - effect.control_mean
    if control.var(ddof=1) == 0 and treatment.var(ddof=1) == 0:
        effect.status = "no_variance"
        effect.message = "every user has the same value in both arms: no interval"
        return effect
    effect.diff_lower, effect.diff_upper, effect.p_value = welch(control, treatment, alpha)
    effect.significant = effect.diff_lower > 0 or effect.diff_upper < 0
    if effect.control_mean == 0:
        effect.status = "zero_control_mean"
        effect.message = "control mean is 0: no effect in %"
        return effect
    scale = 100 / effect.control_mean
    effect.effect_pct = effect.diff * scale
    bounds = sorted((effect.diff_lower * scale, effect.diff_upper * scale))
    effect.lower_pct, effect.upper_pct = bounds
    return effect


def compare_all(
    metrics: pd.DataFrame, control: str, alpha: float, names: tuple[str, ...] = METRICS
) -> list[Effect]:
    """Every arm against control on every metric, Holm-corrected over the computed p-values."""
    arms = sorted(set(metrics["arm"]) - {control})
    by_arm = {arm: part for arm, part in metrics.groupby("arm")}
    base = by_arm.get(control, metrics.iloc[:0])
    effects = [
        compare_arm(name, arm, base[name].to_numpy(float), by_arm[arm][name].to_numpy(float), alpha)
        for arm in arms
        for name in names
    ]
    tested = [e for e in effects if e.p_value is not None]
    if tested:
        reject, corrected, _, _ = multipletests([e.p_value for e in tested], alpha, method="holm")
        for e, r, p in zip(tested, reject, corrected, strict=True):
            e.p_holm, e.significant_holm = float(p), bool(r)
    return effects


def sample_ratio(events: pd.DataFrame) -> SampleRatio:
    """Chi-square of users per arm against an equal split (every user seen in the logs)."""
    users = events.drop_duplicates(["user", "arm"])["arm"].value_counts().sort_index()
    counts = {str(arm): int(n) for arm, n in users.items()}
    if len(counts) < 2:
        return SampleRatio(counts, 0.0, 1.0, False)
    chi2, p_value = stats.chisquare(list(counts.values()))
    return SampleRatio(counts, float(chi2), float(p_value), bool(p_value < SRM_THRESHOLD))


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("botify", "numpy", "pandas", "pyarrow", "scipy", "statsmodels", "matplotlib"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def effects_frame(effects: list[Effect]) -> pd.DataFrame:
    return pd.DataFrame([asdict(e) for e in effects], columns=list(Effect.__dataclass_fields__))


def _fmt(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def render_table(effects: list[Effect]) -> list[list[str]]:
    header = [
        "arm",
        "metric",
        "control",
        "treatment",
        "effect %",
        "CI %",
        "p",
        "sig",
        "p Holm",
        "sig Holm",
    ]
    rows = [header]
    for e in effects:
        interval = f"[{_fmt(e.lower_pct, sign=True)}, {_fmt(e.upper_pct, sign=True)}]"
        rows.append(
            [
                e.arm,
                e.metric,
                _fmt(e.control_mean, 3),
                _fmt(e.treatment_mean, 3),
                _fmt(e.effect_pct, sign=True),
                interval if e.lower_pct is not None else "-",
                _fmt(e.p_value, 4),
                {True: "yes", False: "no", None: "-"}[e.significant],
                _fmt(e.p_holm, 4),
                {True: "yes", False: "no", None: "-"}[e.significant_holm],
            ]
        )
    return rows


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def plot(effects: list[Effect], path: Path, experiment: str, control: str, alpha: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(e.metric for e in effects)) or list(METRICS)
    arms = list(dict.fromkeys(e.arm for e in effects))
    ncols = min(3, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.6 * ncols, (1.4 + 0.6 * max(len(arms), 1)) * nrows), squeeze=False
    )
    for ax in axes.flat[len(metrics) :]:
        ax.set_visible(False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        ax.axvline(0, color="black", linewidth=1)
        ax.annotate(
            control,
            (0, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, -10),
            textcoords="offset points",
            fontsize=8,
        )
        for y, arm in enumerate(arms):
            e = next(x for x in effects if x.metric == metric and x.arm == arm)
            if e.effect_pct is None:
                ax.text(0, y, f"  {e.status}", va="center", fontsize=8, color="gray")
                continue
            if e.significant:
                better = (e.effect_pct < 0) if metric in LOWER_IS_BETTER else (e.effect_pct > 0)
                color = "tab:green" if better else "tab:red"
            else:
                color = "tab:gray"
            ax.errorbar(
                e.effect_pct,
                y,
                xerr=[[e.effect_pct - e.lower_pct], [e.upper_pct - e.effect_pct]],
                fmt="o",
                color=color,
                capsize=4,
                markersize=6,
            )
            star = "*" if e.significant_holm else ""
            ax.annotate(
                f"{e.effect_pct:+.1f}%{star}",
                (e.effect_pct, y),
                xytext=(0, 7),
                textcoords="offset points",
                ha="center",
                fontsize=8,
                color=color,
            )
        ax.set_yticks(range(len(arms)), arms)
        ax.set_ylim(-0.7, len(arms) - 0.3)
        ax.invert_yaxis()
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel(f"effect, % of {control}")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(
        f"{experiment}: each arm vs {control} ({100 * (1 - alpha):.0f}% Welch CI); "
        "green = significantly better, red = significantly worse, * = significant after Holm",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    seconds: float = 0.0


def build_report(
    data: Path,
    experiment: str,
    control: str = "C",
    alpha: float = 0.05,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> Report:
    started = time.perf_counter()
    events = load_events(data, experiment, since_ms, until_ms)
    arms = sorted(set(events["arm"]))
    if control not in arms:
        raise ReportError(
            f"control arm {control!r} not in experiment {experiment!r}; its arms: {', '.join(arms)}"
        )
    metrics = user_metrics(events)
    warnings = []
    srm = sample_ratio(events)
    if srm.mismatch:
        warnings.append(
            f"sample ratio mismatch: users per arm {srm.users}, chi-square p = {srm.p_value:.2g} "
            f"< {SRM_THRESHOLD}; the split is not what the assignment promises, distrust the effects"
        )
    switched = events.groupby("user")["arm"].nunique()
    if (switched > 1).any():
        warnings.append(
            f"{int((switched > 1).sum())} user(s) appear in more than one arm (counted in each)"
        )
    effects = compare_all(metrics, control, alpha)
    warnings += [f"{e.arm} / {e.metric}: {e.message}" for e in effects if e.status != "ok"]
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
        seconds=time.perf_counter() - started,
    )


def write_report(report: Report, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        name: out / name for name in ("report.md", "effects.csv", "report.json", "ab_test.png")
    }
    effects_frame(report.effects).to_csv(paths["effects.csv"], index=False)
    paths["report.json"].write_text(
        json.dumps(asdict(report), indent=2, default=_json_default) + "\n"
    )
    plot(report.effects, paths["ab_test.png"], report.experiment, report.control, report.alpha)
    srm = report.srm
    lines = [
        f"# A/B report: experiment `{report.experiment}`",
        "",
        f"- data: `{report.data}`"
        + (f", events from {report.since_ms} ms" if report.since_ms is not None else "")
        + (f", before {report.until_ms} ms" if report.until_ms is not None else ""),
        f"- control: `{report.control}`, alpha = {report.alpha} (two-sided Welch t; "
        "Holm over all arm x metric comparisons)",
        f"- events: {report.events:,}; users: {report.users:,}; finished sessions: {report.sessions:,}",
        "- users with a finished session per arm: "
        + ", ".join(f"{arm} {n:,}" for arm, n in report.users_with_sessions.items()),
        f"- sample ratio (users per arm {srm.users}): chi-square = {srm.chi2:.2f}, "
        f"p = {srm.p_value:.3g} -> {'MISMATCH' if srm.mismatch else 'ok'}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()),
        "",
        "Effect = (treatment mean - control mean) / control mean, in %, with its "
        f"{100 * (1 - report.alpha):.0f}% confidence interval.",
        "",
        markdown_table(render_table(report.effects)),
        "",
        "![effects](ab_test.png)",
    ]
    if report.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in report.warnings]
    paths["report.md"].write_text("\n".join(lines) + "\n")
    return paths


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m script.ab", description="A/B report over an exported Parquet dataset."
    )
    parser.add_argument("--data", type=Path, required=True, help="dataset (from script.export)")
    parser.add_argument("--experiment", required=True, help="experiment name, e.g. AB")
    parser.add_argument("--out", type=Path, required=True, help="folder for the report files")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (0.05)")
    parser.add_argument("--control", default="C", help="control arm (C)")
    parser.add_argument(
        "--since",
        type=int,
        default=None,
        metavar="MS",
        help="only events at or after this timestamp (ms)",
    )
    parser.add_argument(
        "--until",
        type=int,
        default=None,
        metavar="MS",
        help="only events before this timestamp (ms)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 < args.alpha < 1:
        parser.error("--alpha must be between 0 and 1")
    try:
        report = build_report(
            args.data, args.experiment, args.control, args.alpha, args.since, args.until
        )
    except ReportError as error:
        print(f"ab: error: {error}", file=sys.stderr)
        return 1
    paths = write_report(report, args.out)
    print(
        f"experiment {report.experiment}: {report.events:,} events, {report.users:,} users, "
        f"{report.sessions:,} sessions; alpha {report.alpha}; control {report.control}"
    )
    print(text_table(render_table(report.effects)))
    for warning in report.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    print(f"report: {paths['report.md']} (+ effects.csv, report.json, ab_test.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
