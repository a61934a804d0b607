"""`python -m script.ab`: the report (the default command), `days`, `plan` and `interleave`.

    python -m script.ab [report] --data DATASET --experiment AB --out DIR [options]
    python -m script.ab days --report DIR [DIR ...] --out DIR [--metric M] [--label NAME ...]
    python -m script.ab plan --metric M --mde PCT [--alpha --power --arms] (--data ... | --world ...)
    python -m script.ab interleave --data DATASET [--experiment NAME --arm ARM] [--alpha --power]

Helpers raise; only this layer prints and exits. Exit codes: 0 written; 1 data problem
(`ReportError`: no data, unknown experiment or control arm, an unreadable ceiling file, day
report or experiments config); 2 usage (click, e.g. `--alpha` outside (0, 1)).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from script.ab.errors import ReportError

OPEN_UNIT = click.FloatRange(0, 1, min_open=True, max_open=True)
DATASET = click.Path(path_type=Path)
MS = click.IntRange(min=0)


class ReportGroup(click.Group):
    """A group whose default command is `report`, so today's command lines keep working:
    ``python -m script.ab --data ...`` is ``python -m script.ab report --data ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["report", *args]
        return super().parse_args(ctx, args)


class SpreadCommand(click.Command):
    """Options that take several values after one flag (``--report A B``), as before: each value
    is given its own flag (``--report A --report B``) before click parses."""

    spread = ("--report", "--label")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out: list[str] = []
        current = None
        for token in args:
            if token.startswith("-"):
                current = token if token in self.spread else None
                if current is None:
                    out.append(token)
            elif current is not None:
                out += [current, token]
            else:
                out.append(token)
        return super().parse_args(ctx, out)


@click.group(cls=ReportGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """A/B report over an exported Parquet dataset (the default command), several days' reports
    in one picture (days), and how many users an experiment needs (plan)."""


@cli.command("report")
@click.option("--data", type=DATASET, required=True, help="dataset (from script.export)")
@click.option("--experiment", required=True, help="experiment name, e.g. AB")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="report folder")
@click.option("--alpha", type=OPEN_UNIT, default=0.05, show_default=True, help="significance")
@click.option("--control", default="C", show_default=True, help="control arm")
@click.option("--since", type=MS, default=None, metavar="MS", help="only events at or after (ms)")
@click.option("--until", type=MS, default=None, metavar="MS", help="only events before (ms)")
@click.option(
    "--ceiling",
    type=click.Path(path_type=Path),
    default=None,
    metavar="FILE",
    help="JSON with the oracle's and random's user-level means on the same world and users "
    "(script.ab.ceiling_from_sessions); adds % of oracle and the random -> oracle position",
)
@click.option(
    "--experiments",
    "config",
    type=click.Path(path_type=Path),
    envvar="BOTIFY_EXPERIMENTS",
    default=None,
    metavar="FILE",
    help="the experiments config the service ran (weights for the sample-ratio check, the "
    "decision metric, guardrails); without it: an equal split, no guardrails",
)
@click.option(
    "--cuped",
    type=click.Choice(["auto", "on", "off"]),
    default="auto",
    show_default=True,
    help="CUPED with each user's metric before --since as covariate (auto: when there are "
    "events before --since)",
)
@click.option(
    "--pre-since", type=MS, default=None, metavar="MS", help="the pre-period starts here (ms)"
)
@click.option(
    "--pre-until",
    type=MS,
    default=None,
    metavar="MS",
    help="the pre-period ends here (ms; default --since). Set it to the first treated day's "
    "start when reporting a later day: the covariate must predate the treatment",
)
@click.option(
    "--sequential/--fixed",
    default=False,
    show_default=True,
    help="always-valid intervals (a confidence sequence, valid at every look) instead of "
    "fixed-horizon ones",
)
@click.option(
    "--sequential-view",
    is_flag=True,
    help="the sequential view (where each arm would have stopped, always-valid intervals at "
    "--looks looks) beside fixed-horizon tables",
)
@click.option(
    "--looks",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="sequential: equally spaced looks over the window, to say when each arm would stop",
)
@click.option(
    "--tuning",
    type=click.FloatRange(0, min_open=True),
    default=5000,
    show_default=True,
    metavar="N",
    help="sequential: the confidence sequence's N*, the total users (both arms) where it is "
    "narrowest; set it near the size you expect",
)
@click.option(
    "--power", type=OPEN_UNIT, default=0.8, show_default=True, help="power the MDE is stated at"
)
@click.option(
    "--reference",
    type=click.Path(path_type=Path),
    default=None,
    metavar="FILE",
    help='effects measured elsewhere, shown beside ours (JSON {"label": "seed", "metric": '
    '"mean_time_per_session", "effects": {"T1": 40.6}}; script/ab/reference.py)',
)
def report_cmd(
    data, experiment, out, alpha, control, since, until, ceiling, config, cuped, pre_since,
    pre_until, sequential, sequential_view, looks, tuning, power, reference,
) -> None:  # fmt: skip
    """The A/B report: effects with intervals, CUPED, the sequential view, guardrails, SRM."""
    from script.ab.ceiling import load_ceiling
    from script.ab.config import load_analysis
    from script.ab.reference import load_reference
    from script.ab.render import (
        ceiling_table,
        cuped_table,
        fallback_table,
        guardrail_table,
        method_lines,
        reference_table,
        render_table,
        sequential_table,
        text_table,
        write_report,
    )
    from script.ab.report import build_report

    loaded = load_ceiling(ceiling) if ceiling is not None else None
    analysis = load_analysis(config, experiment)
    report = build_report(
        data, experiment, control, alpha, since, until, loaded,
        analysis=analysis, cuped=cuped, pre_since_ms=pre_since, pre_until_ms=pre_until,
        sequential=sequential, sequential_view=sequential_view,
        looks=looks, tuning=tuning, power=power,
        reference=load_reference(reference) if reference is not None else None,
    )  # fmt: skip
    paths = write_report(report, out)
    click.echo(
        f"experiment {report.experiment}: {report.events:,} events, {report.users:,} users, "
        f"{report.sessions:,} sessions; alpha {report.alpha}; control {report.control}"
    )
    for line in method_lines(report):
        click.echo(line)
    click.echo(text_table(render_table(report.effects)))
    if report.reference is not None:
        label = report.reference_label or "reference"
        click.echo("\n" + text_table(reference_table(report.reference, label)))
    if report.guardrails:
        click.echo("\n" + text_table(guardrail_table(report.guardrails)))
    if report.cuped is not None and report.cuped.enabled:
        click.echo("\n" + text_table(cuped_table(report.effects)))
    if report.sequential is not None:
        click.echo("\n" + text_table(sequential_table(report.sequential, report.decision)))
    click.echo("\n" + text_table(fallback_table(report.fallback)))
    if report.ceiling is not None:
        click.echo("\n" + text_table(ceiling_table(report.ceiling, report.control)))
    for warning in report.warnings:
        click.echo(f"WARNING: {warning}", err=True)
    others = ", ".join(name for name in paths if name != "report.md")
    click.echo(f"report: {paths['report.md']} (+ {others})")


@cli.command("days", cls=SpreadCommand)
@click.option(
    "--report",
    "reports",
    type=click.Path(path_type=Path),
    multiple=True,
    required=True,
    metavar="DIR",
    help="report folders (or their report.json), in day order: --report DIR [DIR ...]",
)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="folder for days.*")
@click.option("--metric", default="mean_time_per_session", show_default=True)
@click.option("--label", "labels", multiple=True, metavar="NAME", help="day labels (1, 2, ...)")
def days_cmd(reports, out, metric, labels) -> None:
    """Each arm's metric and effect vs control per day, from several report.json."""
    from script.ab.days import days_table, read_days, write_days
    from script.ab.render import text_table

    labels = list(labels) or None
    rows = read_days(list(reports), metric, labels)
    paths = write_days(list(reports), out, metric, labels)
    click.echo(text_table(days_table(rows, metric)))
    click.echo(f"days: {paths['days.png']} (+ days.md)")


@cli.command("plan")
@click.option("--metric", default="mean_time_per_session", show_default=True)
@click.option("--mde", type=click.FloatRange(0, min_open=True), default=None, metavar="PCT",
              help="the relative change to detect, in % (e.g. 5)")  # fmt: skip
@click.option("--users", type=click.IntRange(min=2), default=None, metavar="N",
              help="instead of --mde: the MDE of N users per arm")  # fmt: skip
@click.option("--alpha", type=OPEN_UNIT, default=0.05, show_default=True)
@click.option("--power", type=OPEN_UNIT, default=0.8, show_default=True)
@click.option("--arms", type=click.IntRange(min=2), default=2, show_default=True,
              help="arms, control included; alpha is shared by the comparisons (Bonferroni)")  # fmt: skip
@click.option("--cuped", is_flag=True, help="plan for CUPED (needs a pilot with a pre-period)")
@click.option("--sequential", is_flag=True, help="plan for always-valid intervals")
@click.option("--tuning", type=click.FloatRange(0, min_open=True), default=5000, show_default=True,
              metavar="N", help="sequential: the confidence sequence's N*")  # fmt: skip
@click.option("--data", type=DATASET, default=None, help="pilot: a logged dataset")
@click.option("--experiment", default=None, help="pilot: this experiment's --arm (else every user)")
@click.option("--arm", default="C", show_default=True, help="pilot: the arm (with --experiment)")
@click.option("--treatment", default=None, metavar="ARM",
              help="pilot A/B: this arm's variance too (with --experiment); default: equal")  # fmt: skip
@click.option("--variance-ratio", type=click.FloatRange(0, min_open=True), default=None,
              metavar="R", help="the treatment's variance over the control's (overrides)")  # fmt: skip
@click.option("--since", type=MS, default=None, metavar="MS", help="pilot window start (ms)")
@click.option("--until", type=MS, default=None, metavar="MS", help="pilot window end (ms)")
@click.option("--world", type=click.Path(path_type=Path), default=None, envvar="BOTIFY_WORLD",
              help="pilot: simulate on this world instead of --data")  # fmt: skip
@click.option("--sessions", type=click.IntRange(min=100), default=20_000, show_default=True,
              help="simulated pilot: sessions")  # fmt: skip
@click.option("--pre-sessions", type=click.IntRange(min=0), default=0, show_default=True,
              help="simulated pilot: sessions of a pre-period before it (for --cuped)")  # fmt: skip
@click.option("--recommender", default="sticky_artist", show_default=True,
              help="simulated pilot: the (catalog-only) recommender")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="simulated pilot: seed")
def plan_cmd(metric, mde, users, alpha, power, arms, cuped, sequential, tuning, data, experiment,
             arm, treatment, variance_ratio, since, until, world, sessions, pre_sessions,
             recommender, seed) -> None:  # fmt: skip
    """Users (and sessions) per arm to detect --mde with --power, from a pilot's variance."""
    from script.ab.plan import pilot_from_data, pilot_from_simulator, plan

    if (mde is None) == (users is None):
        raise click.UsageError("give --mde PCT or --users N")
    if (data is None) == (world is None):
        raise click.UsageError("give the pilot: --data DATASET or --world DIR (simulated)")
    if world is not None:
        if cuped and not pre_sessions:
            raise click.UsageError("--cuped with a simulated pilot needs --pre-sessions")
        pilot = pilot_from_simulator(world, metric, sessions, recommender, seed, pre_sessions)
    else:
        pilot = pilot_from_data(data, metric, experiment, arm, since, until, cuped, treatment)
    result = plan(
        pilot, None if mde is None else mde / 100, users, alpha, power, arms, cuped, sequential,
        tuning, variance_ratio,
    )  # fmt: skip
    for line in result.lines():
        click.echo(line)


@cli.command("interleave")
@click.option("--data", type=DATASET, required=True, help="dataset (from script.export)")
@click.option("--experiment", default=None, help="only this experiment's --arm (its only "
              "interleaving arm if --arm is not given; without --experiment: every interleaving "
              "step of the data)")  # fmt: skip
@click.option("--arm", default=None, help="the interleaving arm (with --experiment)")
@click.option("--alpha", type=OPEN_UNIT, default=0.05, show_default=True, help="significance")
@click.option("--power", type=OPEN_UNIT, default=0.8, show_default=True,
              help="the power the units needed are stated at")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="print the result as one JSON object too")
def interleave_cmd(data, experiment, arm, alpha, power, as_json) -> None:
    """An interleaving arm's preference: each served track's listening time credited to the side
    that picked it; a's mean time per step minus b's per session and per user, with a CI and a
    p-value, and the share of sessions (users) won."""
    import json

    from script.ab.interleave import analyse, load_interleaved, render

    if arm is not None and experiment is None:
        raise click.UsageError("--arm needs --experiment")
    events = load_interleaved(data, experiment, arm)
    if experiment is not None and arm is None:  # the experiment's one interleaving arm
        arms = sorted(events.loc[events["team"].notna(), "arm"].dropna().unique())
        if len(arms) != 1:
            listed = ", ".join(arms) or "none"
            raise ReportError(f"name the interleaving arm with --arm (experiment "
                              f"{experiment!r} has: {listed})")  # fmt: skip
        arm = arms[0]
    result = analyse(events, arm, alpha, power)
    click.echo(render(result))
    if as_json:
        result["preference"] = {k: v.to_dict() for k, v in result["preference"].items()}
        click.echo(json.dumps(result))


def main(argv: list[str] | None = None) -> int:
    """Run a command; 0 written, 1 data problem; usage errors exit 2 (SystemExit)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        code = cli.main(args=argv, prog_name="python -m script.ab", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.UsageError as error:
        error.show()
        raise SystemExit(2) from error
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except ReportError as error:
        name = (
            "ab" if not argv or argv[0] not in ("days", "plan", "interleave") else f"ab {argv[0]}"
        )
        click.echo(f"{name}: error: {error}", err=True)
        return 1
    return code if isinstance(code, int) else 0
