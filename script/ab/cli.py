"""`python -m script.ab`: the report, and `python -m script.ab days`: several days in one picture.

Exit codes: 0 written; 1 data problem (`ReportError`: no data, unknown experiment or control arm,
an unreadable ceiling file or day report); 2 usage (argparse, `--alpha` outside (0, 1)).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from script.ab.ceiling import load_ceiling
from script.ab.days import DEFAULT_METRIC, days_table, read_days, write_days
from script.ab.errors import ReportError
from script.ab.render import (
    ceiling_table,
    fallback_table,
    render_table,
    text_table,
    write_report,
)
from script.ab.report import build_report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m script.ab",
        description="A/B report over an exported Parquet dataset.",
        epilog="Several days' reports in one picture: python -m script.ab days --help",
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
    parser.add_argument(
        "--ceiling",
        type=Path,
        default=None,
        metavar="FILE",
        help="JSON with the oracle's and random's user-level means on the same world and users "
        "(script.ab.ceiling_from_sessions); adds %% of oracle and the random -> oracle position",
    )
    return parser


def build_days_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m script.ab days",
        description="Each arm's metric and effect vs control per day, from several report.json.",
    )
    parser.add_argument(
        "--report",
        type=Path,
        nargs="+",
        required=True,
        metavar="DIR",
        help="report folders (or their report.json), in day order",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for days.png and days.md")
    parser.add_argument("--metric", default=DEFAULT_METRIC, help=f"metric ({DEFAULT_METRIC})")
    parser.add_argument(
        "--label", nargs="+", default=None, metavar="NAME", help="day labels (1, 2, ...)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["days"]:
        return days_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 < args.alpha < 1:
        parser.error("--alpha must be between 0 and 1")
    try:
        ceiling = load_ceiling(args.ceiling) if args.ceiling is not None else None
        report = build_report(
            args.data, args.experiment, args.control, args.alpha, args.since, args.until, ceiling
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
    print("\n" + text_table(fallback_table(report.fallback)))
    if report.ceiling is not None:
        print("\n" + text_table(ceiling_table(report.ceiling, report.control)))
    for warning in report.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    others = ", ".join(name for name in paths if name != "report.md")
    print(f"report: {paths['report.md']} (+ {others})")
    return 0


def days_main(argv: list[str]) -> int:
    args = build_days_parser().parse_args(argv)
    try:
        rows = read_days(args.report, args.metric, args.label)
        paths = write_days(args.report, args.out, args.metric, args.label)
    except ReportError as error:
        print(f"ab days: error: {error}", file=sys.stderr)
        return 1
    print(text_table(days_table(rows, args.metric)))
    print(f"days: {paths['days.png']} (+ days.md)")
    return 0
