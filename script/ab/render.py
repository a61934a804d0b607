"""A `Report` as files: report.md, effects.csv, report.json, and the pictures of
`script.ab.pictures` (ab_test.png, and ceiling.png, sequential.png where they apply)."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from script.ab.ceiling import CeilingResult
from script.ab.compare import Effect
from script.ab.guardrails import GuardrailResult
from script.ab.metrics import FallbackRate
from script.ab.pictures import plot, plot_ceiling, plot_sequential
from script.ab.reference import ReferenceRow
from script.ab.report import Report, SequentialInfo


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
    rows = [[*header, "p Holm", "sig Holm", "MDE %"]]
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
                fmt(e.mde_pct, 1),
            ]
        )
    return rows


def cuped_table(effects: list[Effect]) -> list[list[str]]:
    """Raw and CUPED-adjusted effects side by side, and how much narrower the interval is."""
    rows = [["arm", "metric", "theta", "raw effect %", "raw CI %", "CUPED effect %", "CUPED CI %",
             "CI narrower"]]  # fmt: skip
    for e in effects:
        if e.method != "cuped":
            continue
        narrower = "-" if e.ci_narrower_pct is None else f"{e.ci_narrower_pct:.1f} %"
        rows.append(
            [
                e.arm,
                e.metric,
                fmt(e.theta, 3),
                fmt(e.raw_effect_pct, sign=True),
                interval(e.raw_lower_pct, e.raw_upper_pct),
                fmt(e.effect_pct, sign=True),
                interval(e.lower_pct, e.upper_pct),
                narrower,
            ]
        )
    return rows


def sequential_table(info: SequentialInfo, decision: str) -> list[list[str]]:
    """Per arm: the look at which the decision metric's always-valid interval first excluded 0."""
    rows = [["arm", f"{decision}: stopped at look", "after (s)", "direction",
             "effect % at the last look", "always-valid CI %"]]  # fmt: skip
    last = info.looks[-1].effects if info.looks else {}
    for arm, stop in info.stops.items():
        final = last.get(arm, {})
        if stop is None:
            look, after, direction = f"never (of {len(info.looks)})", "-", "-"
        else:
            look = f"{stop['look']} of {len(info.looks)}"
            after = f"{(stop['until_ms'] - info.start_ms) / 1000:.1f}"
            direction = stop["direction"]
        rows.append(
            [
                arm,
                look,
                after,
                direction,
                fmt(final.get("effect_pct"), sign=True),
                interval(final.get("lower_pct"), final.get("upper_pct")),
            ]
        )
    return rows


def guardrail_table(results: list[GuardrailResult]) -> list[list[str]]:
    rows = [["arm", "guardrail", "effect %", "CI %", "verdict", "why"]]
    for r in results:
        sign = "+" if r.lower_is_better else "-"
        rows.append(
            [
                r.arm,
                f"{r.metric} at most {sign}{r.margin_pct:g} %",
                fmt(r.effect_pct, sign=True),
                interval(r.lower_pct, r.upper_pct),
                r.verdict.upper() if r.verdict != "no verdict" else r.verdict,
                r.reason,
            ]
        )
    return rows


def fallback_table(rates: dict[str, FallbackRate]) -> list[list[str]]:
    rows = [["arm", "next events", "fallback", "fallback rate"]]
    for arm, r in rates.items():
        share = "-" if r.rate is None else f"{100 * r.rate:.2f} %"
        rows.append([arm, f"{r.next_events:,}", f"{r.fallback_events:,}", share])
    return rows


def reference_table(rows: list[ReferenceRow], label: str) -> list[list[str]]:
    """Per arm: our effect and interval, the reference's point, and whether it lies inside."""
    out = [["arm", "metric", "ours", label, f"{label} inside our interval"]]
    for r in rows:
        ours = (
            "n/a"
            if r.effect_pct is None
            else f"{r.effect_pct:+.1f} % [{r.lower_pct:+.1f}, {r.upper_pct:+.1f}]"
        )
        verdict = {True: "yes", False: "no", None: "n/a"}[r.inside]
        out.append([r.arm, r.metric, ours, f"{r.reference_pct:+.1f} %", verdict])
    return out


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


def to_json(report: Report) -> str:
    return json.dumps(_finite(asdict(report)), indent=2, default=_json_default) + "\n"


def _finite(value: object) -> object:
    """JSON has no infinity or NaN: such a number (an impossible split's chi-square) is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def method_lines(report: Report) -> list[str]:
    """What the effects are: plain or CUPED, fixed-horizon or always-valid; and why."""
    lines = []
    cuped = report.cuped
    if cuped is not None and cuped.enabled:
        with_pre = sum(cuped.users_with_pre.values())
        without = sum(cuped.users_without_pre.values())
        window = f"the events before {cuped.pre_until_ms} ms" + (
            f" from {cuped.pre_since_ms} ms" if cuped.pre_since_ms is not None else ""
        )
        lines.append(
            f"- CUPED: on, by default where a pre-period exists (covariate: each metric of the "
            f"same user in the pre-period, {window}; theta pooled over each pair of arms, as "
            f"gbstats). {with_pre:,} users had pre-period data, {without:,} had none and count 0 "
            "there (gbstats' way: they stay in, gaining nothing from the adjustment)"
        )
        skipped = [e for e in report.effects if e.pre_balance_p is not None and e.method != "cuped"]
        if skipped:
            lines[-1] += (
                "; skipped where the arms' pre-period means differ beyond chance (not an untreated "
                "pre-period): " + ", ".join(f"{e.arm} {e.metric}" for e in skipped)
            )
    elif cuped is not None:
        lines.append(f"- CUPED: {cuped.reason}")
    if report.sequential is not None:
        info = report.sequential
        always = any(e.sequential for e in report.effects)
        lines.append(
            f"- sequential view: on. {'Intervals and p-values are' if always else 'The looks use'}"
            f" always-valid intervals (gbstats' confidence sequence, tuning parameter N* = "
            f"{info.tuning:g} users in a pair of arms), valid however often they are looked at; "
            f"recomputed at {len(info.looks)} equally spaced looks over the window"
            + (
                ""
                if always
                else "; the tables' intervals are fixed-horizon, for the one look "
                "at the end of the window"
            )
        )
    else:
        lines.append("- sequential view: off (fixed-horizon intervals: valid for one look)")
    lines.append(
        f"- decision metric: `{report.decision}`"
        + (f"; guardrails and weights from `{report.config}`" if report.config else "")
    )
    return lines


def markdown(report: Report) -> str:
    srm = report.srm
    split = (
        "the weights " + ", ".join(f"{a} {w:.3g}" for a, w in report.weights.items())
        if report.weights
        else "an equal split"
    )
    method = "CUPED-adjusted " if any(e.method == "cuped" for e in report.effects) else ""
    lines = [
        f"# A/B report: experiment `{report.experiment}`",
        "",
        f"- data: `{report.data}`"
        + (f", events from {report.since_ms} ms" if report.since_ms is not None else "")
        + (f", before {report.until_ms} ms" if report.until_ms is not None else ""),
        f"- control: `{report.control}`, alpha = {report.alpha} (two-sided Welch t; "
        "Holm over all arm x metric comparisons)",
        *method_lines(report),
        f"- events: {report.events:,}; users: {report.users:,}; finished sessions: {report.sessions:,}",
        "- users with a finished session per arm: "
        + ", ".join(f"{arm} {n:,}" for arm, n in report.users_with_sessions.items()),
        f"- sample ratio (users per arm {srm.users}, expected: {split}): chi-square = "
        f"{srm.chi2:.2f}, p = {srm.p_value:.3g} -> {'MISMATCH' if srm.mismatch else 'ok'}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in report.versions.items()),
        "",
        f"Effect = ({method}treatment mean - control mean) / control mean, in %, with its "
        f"{100 * (1 - report.alpha):.0f}% confidence interval (Fieller's interval of the ratio); "
        f"MDE = the smallest effect this many users detect with {report.power:.0%} power.",
        "",
        markdown_table(render_table(report.effects)),
        "",
        "![effects](ab_test.png)",
    ]
    if report.reference is not None:
        label = report.reference_label or "reference"
        lines += [
            "",
            f"## Against the {label}",
            "",
            f"The {label}'s effects beside ours: does its point lie inside our interval? "
            "(Validation: reported, never tuned to.)",
            "",
            markdown_table(reference_table(report.reference, label)),
        ]
    if report.guardrails:
        lines += [
            "",
            "## Guardrails",
            "",
            "Non-inferiority: an arm passes when its whole interval stays within the margin.",
            "",
            markdown_table(guardrail_table(report.guardrails)),
        ]
    if report.cuped is not None and report.cuped.enabled:
        lines += [
            "",
            "## CUPED",
            "",
            "The plain effect and the CUPED-adjusted one side by side (the same kind of interval), "
            "and by how much CUPED narrowed the interval.",
            "",
            markdown_table(cuped_table(report.effects)),
        ]
    if report.sequential is not None:
        lines += [
            "",
            "## Sequential view",
            "",
            f"Where each arm would have stopped: the first of {len(report.sequential.looks)} "
            f"looks at which the always-valid interval of `{report.decision}` excluded 0 "
            "(seconds after the window's first event).",
            "",
            markdown_table(sequential_table(report.sequential, report.decision)),
            "",
            "![sequential](sequential.png)",
        ]
    lines += [
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
    if report.sequential is not None:
        names.append("sequential.png")
    paths = {name: out / name for name in names}
    effects_frame(report.effects).to_csv(paths["effects.csv"], index=False)
    paths["report.json"].write_text(to_json(report))
    plot(report.effects, paths["ab_test.png"], report.experiment, report.control, report.alpha)
    # a picture left by an earlier run would contradict report.md: draw it or remove it
    if report.ceiling is not None:
        plot_ceiling(report.ceiling, paths["ceiling.png"], report.experiment, report.control)
    else:
        (out / "ceiling.png").unlink(missing_ok=True)
    if report.sequential is not None:
        plot_sequential(report.sequential, paths["sequential.png"], report.decision, report.alpha)
    else:
        (out / "sequential.png").unlink(missing_ok=True)
    paths["report.md"].write_text(markdown(report))
    return paths
