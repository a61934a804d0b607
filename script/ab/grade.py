"""The course's 2026 grading: `ab_result.json` in its schema, and its reproducibility rule.

    python -m script.grade result --report DIR [--out FILE]
    python -m script.grade check --report DIR DIR [DIR ...] [--metric M] [--max-diff 10] --out DIR

The course's grader runs the A/B loop twice with a fixed SEED and EPISODES and writes each run's
effects as `ab_result.json`:

    {"all_effects": [{"treatment", "metric", "control_mean", "treatment_mean",
                      "effect_pct", "lower_pct", "upper_pct", "significant"}, ...]}

(the Week-1 notebook's effects table: the effect and its 95 % Welch interval in % of the control
mean, `significant` when the interval excludes 0). It accepts a result only when the two runs
agree: for every treatment, on the graded metric, the effects have the same sign and differ by at
most 10 percentage points. `result` writes one report's `ab_result.json` (our A/B report,
`python -m script.ab`, computes the same statistics: `measure.stats.WelchTest`); `check` applies
the rule to two runs' reports, or to K runs with different seeds (`python -m demo.grade --seeds
K`), where it also reports the spread of each effect: with replayable runs the same seed gives
the same numbers, so the question the rule really asks (does the effect survive another draw of
the simulation?) needs other seeds.

Exit codes: 0 written (and, for `check`, accepted); 1 a report unreadable or, for `check`, the
result not accepted; 2 usage.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path

import click

COURSE_FIELDS = (
    "treatment",
    "metric",
    "control_mean",
    "treatment_mean",
    "effect_pct",
    "lower_pct",
    "upper_pct",
    "significant",
)
GRADED_METRIC = "mean_time_per_session"  # the homework's metric
MAX_DIFF_PP = 10.0  # the course's bound on the difference of two runs' effects


class GradeError(Exception):
    """A report that cannot be graded (missing, unreadable, without effects)."""


def read_report(path: str | Path) -> dict:
    """A report folder's report.json (or the file itself)."""
    path = Path(path)
    file = path / "report.json" if path.is_dir() else path
    try:
        report = json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise GradeError(f"{file}: not a readable report.json ({error})") from error
    if not isinstance(report, dict) or not isinstance(report.get("effects"), list):
        raise GradeError(f"{file}: no effects (not written by python -m script.ab?)")
    return report


def course_effects(report: dict) -> list[dict]:
    """The report's comparisons in the course's schema (the ones that could be computed)."""
    out = []
    for effect in report["effects"]:
        if effect.get("status", "ok") != "ok":
            continue
        row = {
            "treatment": effect["arm"],
            "metric": effect["metric"],
            "control_mean": float(effect["control_mean"]),
            "treatment_mean": float(effect["treatment_mean"]),
            "effect_pct": float(effect["effect_pct"]),
            "lower_pct": float(effect["lower_pct"]),
            "upper_pct": float(effect["upper_pct"]),
            "significant": bool(effect["lower_pct"] > 0 or effect["upper_pct"] < 0),
        }
        out.append(row)
    return out


def ab_result(report: dict) -> dict:
    """The course's `ab_result.json` document."""
    return {"all_effects": course_effects(report)}


@dataclass(frozen=True)
class Verdict:
    """One treatment on one metric across the runs."""

    treatment: str
    metric: str
    effects_pct: tuple[float, ...]
    significant: tuple[bool, ...]
    same_sign: bool  # the course's first rule
    max_diff_pp: float  # the largest difference between two runs' effects
    within_bound: bool  # the course's second rule: max_diff_pp <= the bound
    mean_pct: float
    sd_pct: float  # across runs (0 for one run)

    @property
    def accepted(self) -> bool:
        return self.same_sign and self.within_bound


def check(results: Sequence[dict], metrics: Sequence[str] = (GRADED_METRIC,),
          max_diff: float = MAX_DIFF_PP) -> list[Verdict]:  # fmt: skip
    """The course's rule over every pair of runs (`ab_result` documents), per treatment and
    metric: all effects of one sign (0 counts as a sign of its own) and no two further apart
    than `max_diff` percentage points."""
    if len(results) < 2:
        raise GradeError("the rule compares runs: give at least two")
    by_key: dict[tuple[str, str], list[dict]] = {}
    for result in results:
        for row in result["all_effects"]:
            if row["metric"] in metrics:
                by_key.setdefault((row["treatment"], row["metric"]), []).append(row)
    verdicts = []
    for (treatment, metric), rows in sorted(by_key.items()):
        if len(rows) != len(results):
            raise GradeError(f"{treatment} / {metric}: in {len(rows)} of {len(results)} runs")
        effects = tuple(r["effect_pct"] for r in rows)
        signs = {math.copysign(1.0, e) if e else 0.0 for e in effects}
        diff = max(abs(a - b) for a, b in combinations(effects, 2))
        mean = sum(effects) / len(effects)
        sd = math.sqrt(sum((e - mean) ** 2 for e in effects) / (len(effects) - 1))
        verdicts.append(Verdict(treatment, metric, effects, tuple(r["significant"] for r in rows),
                                len(signs) == 1, diff, diff <= max_diff, mean, sd))  # fmt: skip
    return verdicts


def verdict_table(verdicts: Sequence[Verdict], max_diff: float) -> str:
    lines = [
        "| treatment | metric | effect per run, % | mean (sd) | same sign | "
        f"max difference (<= {max_diff:g} pp) | significant runs | accepted |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for v in verdicts:
        effects = ", ".join(f"{e:+.2f}" for e in v.effects_pct)
        lines.append(
            f"| {v.treatment} | {v.metric} | {effects} | {v.mean_pct:+.2f} ({v.sd_pct:.2f}) | "
            f"{'yes' if v.same_sign else 'NO'} | {v.max_diff_pp:.2f} pp "
            f"{'ok' if v.within_bound else 'TOO FAR'} | {sum(v.significant)} of "
            f"{len(v.significant)} | {'yes' if v.accepted else 'NO'} |"
        )
    return "\n".join(lines)


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(document, indent=2) + "\n")
    tmp.replace(path)


# -- the commands -------------------------------------------------------------------------------
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """The course's 2026 grading: ab_result.json and the reproducibility rule."""


@cli.command("result")
@click.option("--report", type=click.Path(exists=True, path_type=Path), required=True,
              help="a report folder written by python -m script.ab (or its report.json)")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="default: ab_result.json beside the report")  # fmt: skip
def result_cmd(report: Path, out: Path | None) -> None:
    """Write one report's effects as the course's ab_result.json."""
    document = ab_result(_read(report))
    out = out or (report if report.is_dir() else report.parent) / "ab_result.json"
    write_json(out, document)
    click.echo(f"{len(document['all_effects'])} effects -> {out}")


@cli.command("check")
@click.option("--report", "reports", type=click.Path(exists=True, path_type=Path), multiple=True,
              required=True, help="the runs' report folders (repeatable; at least two)")  # fmt: skip
@click.option("--metric", "metrics", multiple=True, default=(GRADED_METRIC,), show_default=True,
              help="metric the rule applies to (repeatable)")  # fmt: skip
@click.option("--max-diff", type=click.FloatRange(min=0), default=MAX_DIFF_PP, show_default=True,
              help="the largest difference of two runs' effects, in percentage points")  # fmt: skip
@click.option("--label", "labels", multiple=True, help="a name per run (default: run 1, 2, ...)")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="folder for ab_result.json (the first run's) and reproducibility.json")  # fmt: skip
def check_cmd(reports: tuple[Path, ...], metrics: tuple[str, ...], max_diff: float,
              labels: tuple[str, ...], out: Path) -> None:  # fmt: skip
    """Apply the course's reproducibility rule to two (or more) runs' reports."""
    if len(reports) < 2:
        raise click.UsageError("give at least two --report")
    if labels and len(labels) != len(reports):
        raise click.UsageError("give one --label per --report")
    results = [ab_result(_read(report)) for report in reports]
    try:
        verdicts = check(results, metrics, max_diff)
    except GradeError as error:
        raise click.ClickException(str(error)) from error
    if not verdicts:
        raise click.ClickException(f"no effects on {', '.join(metrics)} in the reports")
    accepted = all(v.accepted for v in verdicts)
    write_json(out / "ab_result.json", results[0])
    write_json(out / "reproducibility.json", {
        "rule": {"same_sign": True, "max_diff_pp": max_diff, "metrics": list(metrics)},
        "runs": [{"label": label, "report": str(report)} for label, report in
                 zip(labels or [f"run {i}" for i in range(1, len(reports) + 1)], reports,
                     strict=True)],
        "verdicts": [{**asdict(v), "accepted": v.accepted} for v in verdicts],
        "accepted": accepted,
        "all_effects": results,
    })  # fmt: skip
    click.echo(verdict_table(verdicts, max_diff))
    same_sign = all(v.same_sign for v in verdicts)
    within = all(v.within_bound for v in verdicts)
    click.echo(f"\nsame sign in every run: {'yes' if same_sign else 'no'}; every two runs within "
               f"{max_diff:g} pp: {'yes' if within else 'no'} -> "
               f"{'ACCEPTED' if accepted else 'NOT ACCEPTED'}")  # fmt: skip
    click.echo(f"-> {out / 'ab_result.json'}, {out / 'reproducibility.json'}", err=True)
    if not accepted:
        sys.exit(1)


def _read(report: Path) -> dict:
    try:
        return read_report(report)
    except GradeError as error:
        raise click.ClickException(str(error)) from error


def main() -> None:
    cli(prog_name="python -m script.grade")
