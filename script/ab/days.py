"""Several days of one experiment in one picture, from each day's `report.json`.

    python -m script.ab days --report DIR [DIR ...] --out DIR [--metric mean_time_per_session]
                             [--label NAME ...]

Each DIR is a report folder written by `python -m script.ab` (or its `report.json`), given in day
order; labels default to 1, 2, ... Writes `OUT/days.png` (left: each arm's mean per day; right:
each arm's effect against control in % with its interval) and `OUT/days.md` (the same numbers as
a table), and prints the table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from script.ab.errors import ReportError
from script.ab.pictures import pyplot
from script.ab.render import fmt, interval, markdown_table

DEFAULT_METRIC = "mean_time_per_session"


@dataclass
class DayArm:
    """One arm on one day."""

    day: str
    arm: str
    control: str
    users: int | None
    mean: float | None
    effect_pct: float | None = None
    lower_pct: float | None = None
    upper_pct: float | None = None
    significant_holm: bool | None = None


def _load(path: Path) -> dict:
    file = path / "report.json" if path.is_dir() else path
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ReportError(f"cannot read the day report {file}: {error}") from error


def read_days(
    reports: Sequence[Path], metric: str = DEFAULT_METRIC, labels: Sequence[str] | None = None
) -> list[DayArm]:
    """Each day's arms (control first), from the reports' summaries and effects."""
    if labels is not None and len(labels) != len(reports):
        raise ReportError(f"{len(labels)} label(s) for {len(reports)} report(s)")
    rows: list[DayArm] = []
    seen_metric = False
    for index, path in enumerate(reports):
        report = _load(Path(path))
        day = labels[index] if labels is not None else str(index + 1)
        control = report.get("control", "C")
        effects = {e["arm"]: e for e in report.get("effects", []) if e.get("metric") == metric}
        summaries = report.get("summaries") or {}
        arms = [control] + sorted((set(summaries) | set(effects)) - {control})
        for arm in arms:
            summary = summaries.get(arm, {}).get(metric)
            effect = effects.get(arm, {})
            users, mean = None, None
            if summary and summary.get("n"):  # a report.json from before the summaries lacks it
                users, mean = summary["n"], summary["sum"] / summary["n"]
            elif arm == control and effects:
                first = next(iter(effects.values()))
                users, mean = first.get("control_users"), first.get("control_mean")
            else:
                users, mean = effect.get("treatment_users"), effect.get("treatment_mean")
            seen_metric |= mean is not None
            rows.append(
                DayArm(
                    day,
                    arm,
                    control,
                    users,
                    mean,
                    effect.get("effect_pct"),
                    effect.get("lower_pct"),
                    effect.get("upper_pct"),
                    effect.get("significant_holm"),
                )
            )
    if not seen_metric:
        raise ReportError(f"no report has values of the metric {metric!r}")
    return rows


def days_table(rows: Sequence[DayArm], metric: str = DEFAULT_METRIC) -> list[list[str]]:
    table = [["day", "arm", "users", metric, "vs control, %", "CI %", "sig Holm"]]
    for r in rows:
        versus = "control" if r.arm == r.control else fmt(r.effect_pct, 1, sign=True)
        table.append(
            [
                r.day,
                r.arm,
                "-" if r.users is None else f"{r.users:,}",
                fmt(r.mean, 3),
                versus,
                interval(r.lower_pct, r.upper_pct, 1),
                {True: "yes", False: "no", None: "-"}[r.significant_holm],
            ]
        )
    return table


def plot_days(rows: Sequence[DayArm], path: Path, metric: str = DEFAULT_METRIC) -> None:
    plt = pyplot()
    days = list(dict.fromkeys(r.day for r in rows))
    arms = list(dict.fromkeys(r.arm for r in rows))
    controls = sorted({r.control for r in rows})
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {arm: f"C{i % 10}" for i, arm in enumerate(arms)}
    treated = [a for a in arms if not all(r.arm == r.control for r in rows if r.arm == a)]
    width = 0.5 / max(len(treated), 1)
    for arm in arms:
        mine = {r.day: r for r in rows if r.arm == arm}
        xs = [d for d, day in enumerate(days) if day in mine and mine[day].mean is not None]
        left.plot(xs, [mine[days[x]].mean for x in xs], "o-", color=colors[arm], label=arm)
        # (day index, effect, lower, upper) of the days with an interval
        tested = [
            (x, r.effect_pct, r.lower_pct, r.upper_pct)
            for x in xs
            if (r := mine[days[x]]).effect_pct is not None
            and r.lower_pct is not None
            and r.upper_pct is not None
        ]
        if not tested:
            continue
        offset = (treated.index(arm) - (len(treated) - 1) / 2) * width  # side by side per day
        right.errorbar(
            [x + offset for x, *_ in tested],
            [effect for _, effect, _, _ in tested],
            yerr=[
                [effect - lower for _, effect, lower, _ in tested],
                [upper - effect for _, effect, _, upper in tested],
            ],
            fmt="o",
            color=colors[arm],
            capsize=4,
            label=arm,
        )
    for ax in (left, right):
        ax.set_xticks(range(len(days)), days)
        ax.set_xlabel("day")
        ax.grid(alpha=0.3)
    left.set_title(f"{metric}, mean per user", fontsize=10)
    left.legend(fontsize=8)
    right.axhline(0, color="black", linewidth=1)
    right.set_title(f"effect vs {'/'.join(controls)}, % (interval)", fontsize=10)
    right.set_ylabel("%")
    if right.get_legend_handles_labels()[0]:
        right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_days(
    reports: Sequence[Path],
    out: Path,
    metric: str = DEFAULT_METRIC,
    labels: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Read the day reports, write `days.png` and `days.md` into ``out``; return the paths."""
    rows = read_days(reports, metric, labels)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"days.md": out / "days.md", "days.png": out / "days.png"}
    plot_days(rows, paths["days.png"], metric)
    sources = ", ".join(f"`{Path(p)}`" for p in reports)
    paths["days.md"].write_text(
        f"# {metric} per day\n\nReports, in day order: {sources}.\n\n"
        + markdown_table(days_table(rows, metric))
        + "\n\n![days](days.png)\n"
    )
    return paths
