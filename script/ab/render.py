"""A `Report` as files: report.md, effects.csv, report.json, ab_test.png (and ceiling.png).

Pictures use matplotlib's Agg backend, imported only when a picture is drawn.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from script.ab.ceiling import CeilingResult
from script.ab.metrics import LOWER_IS_BETTER, METRICS, FallbackRate
from script.ab.report import Report
from script.ab.stats import Effect


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def effects_frame(effects: list[Effect]) -> pd.DataFrame:
    return pd.DataFrame([asdict(e) for e in effects], columns=list(Effect.__dataclass_fields__))


def fmt(value: float | None, digits: int = 2, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def interval(lower: float | None, upper: float | None, digits: int = 2) -> str:
    if lower is None or upper is None:
        return "-"
    return f"[{fmt(lower, digits, sign=True)}, {fmt(upper, digits, sign=True)}]"


_YES_NO = {True: "yes", False: "no", None: "-"}


def render_table(effects: list[Effect]) -> list[list[str]]:
    header = ["arm", "metric", "control", "treatment", "effect %", "CI %", "p", "sig"]
    rows = [[*header, "p Holm", "sig Holm"]]
    for e in effects:
        rows.append(
            [
                e.arm,
                e.metric,
                fmt(e.control_mean, 3),
                fmt(e.treatment_mean, 3),
                fmt(e.effect_pct, sign=True),
                interval(e.lower_pct, e.upper_pct),
                fmt(e.p_value, 4),
                _YES_NO[e.significant],
                fmt(e.p_holm, 4),
                _YES_NO[e.significant_holm],
            ]
        )
    return rows


def fallback_table(rates: dict[str, FallbackRate]) -> list[list[str]]:
    rows = [["arm", "next events", "fallback", "fallback rate"]]
    for arm, r in rates.items():
        share = "-" if r.rate is None else f"{100 * r.rate:.2f} %"
        rows.append([arm, f"{r.next_events:,}", f"{r.fallback_events:,}", share])
    return rows


def ceiling_table(ceiling: CeilingResult, control: str) -> list[list[str]]:
    rows = [["arm", "metric", "value", f"vs {control}", "% of oracle", "random -> oracle"]]
    for r in ceiling.rows:
        versus = ""
        if r.vs_control_pct is not None:
            versus = f"{r.vs_control_pct:+.1f} % " + interval(
                r.vs_control_lower, r.vs_control_upper, 1
            )
        percent = "-" if r.pct_of_oracle is None else f"{r.pct_of_oracle:.1f} %"
        position = "-" if r.position_pct is None else f"{r.position_pct:.1f} %"
        rows.append([r.arm, r.metric, f"{r.value:.3f}", versus, percent, position])
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
    plt = pyplot()
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
            if e.effect_pct is None or e.lower_pct is None or e.upper_pct is None:
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


def plot_ceiling(ceiling: CeilingResult, path: Path, experiment: str, control: str) -> None:
    """Per metric, one bar per arm from random (0 %) to where the arm sits; the oracle is 100 %."""
    plt = pyplot()
    metrics = list(dict.fromkeys(r.metric for r in ceiling.rows))
    fig, axes = plt.subplots(len(metrics) or 1, 1, figsize=(8, 0.5 + 1.9 * max(len(metrics), 1)))
    axes = np.atleast_1d(axes)
    for ax, metric in zip(axes, metrics, strict=False):
        rows = [r for r in ceiling.rows if r.metric == metric and r.arm not in ("random", "oracle")]
        refs = {r.arm: r.value for r in ceiling.rows if r.metric == metric}
        positions = [r.position_pct for r in rows if r.position_pct is not None]
        low, high = min([0.0, *positions]), max([100.0, *positions])
        for y, r in enumerate(rows):
            if r.position_pct is None:
                ax.text(0, y, "  random = oracle", va="center", fontsize=8, color="gray")
                continue
            color = "tab:gray" if r.arm == control else "tab:blue"
            ax.barh(y, r.position_pct, left=0, height=0.6, color=color)
            ax.annotate(
                f"{r.position_pct:.1f} % ({r.value:.3g})",
                (max(r.position_pct, 0), y),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        for x in (0, 100):
            ax.axvline(x, color="black", linewidth=1, linestyle="--")
        ax.set_yticks(range(len(rows)), [r.arm for r in rows])
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.invert_yaxis()
        ax.set_xlim(low - 0.05 * (high - low), high + 0.2 * (high - low))
        ax.set_title(
            f"{metric} (random {refs['random']:.3g}, oracle {refs['oracle']:.3g})", fontsize=10
        )
        ax.set_xlabel("position between random (0 %) and the oracle (100 %)")
        ax.grid(axis="x", alpha=0.3)
    sessions = f", {ceiling.sessions:,} simulated sessions" if ceiling.sessions else ""
    fig.suptitle(f"{experiment}: each arm against the ceiling{sessions}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def to_json(report: Report) -> str:
    return json.dumps(asdict(report), indent=2, default=_json_default) + "\n"


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def markdown(report: Report) -> str:
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
        "",
        "## Fallback",
        "",
        "Share of each arm's `next` answers that its fallback recommender gave (the arm had no "
        "list, model or Redis for that user).",
        "",
        markdown_table(fallback_table(report.fallback)),
    ]
    if report.ceiling is not None:
        sessions = report.ceiling.sessions
        lines += [
            "",
            "## Against the ceiling",
            "",
            "The oracle (it knows the hidden session interest) and a random recommender, "
            "simulated in-process on the same world and users"
            + (f" ({sessions:,} sessions each at least)" if sessions else "")
            + f", from `{report.ceiling.source}`. Each arm's value in % of "
            f"{report.control}, in % of the oracle's, and as its position between random (0 %) "
            "and the oracle (100 %).",
            "",
            markdown_table(ceiling_table(report.ceiling, report.control)),
            "",
            "![ceiling](ceiling.png)",
        ]
    if report.warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in report.warnings]
    return "\n".join(lines) + "\n"


def write_report(report: Report, out: Path) -> dict[str, Path]:
    """Write the report's files into ``out``; return them by name."""
    out.mkdir(parents=True, exist_ok=True)
    names = ["report.md", "effects.csv", "report.json", "ab_test.png"]
    if report.ceiling is not None:
        names.append("ceiling.png")
    paths = {name: out / name for name in names}
    effects_frame(report.effects).to_csv(paths["effects.csv"], index=False)
    paths["report.json"].write_text(to_json(report))
    plot(report.effects, paths["ab_test.png"], report.experiment, report.control, report.alpha)
    if report.ceiling is not None:
        plot_ceiling(report.ceiling, paths["ceiling.png"], report.experiment, report.control)
    else:  # a picture left by an earlier run with a ceiling would contradict report.md
        (out / "ceiling.png").unlink(missing_ok=True)
    paths["report.md"].write_text(markdown(report))
    return paths
