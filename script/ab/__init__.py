"""The A/B report: events -> sessions -> user-level metrics -> per-arm summaries -> tests.

    python -m script.ab --data DATASET --experiment AB --out DIR [--alpha 0.05] [--control C]
                        [--since MS] [--until MS] [--ceiling FILE]
    python -m script.ab days --report DIR [DIR ...] --out DIR [--metric M] [--label NAME ...]

Modules, in the order data flows:

- `metrics`: the dataset's events -> the course notebook's user-level metrics, the per-arm
  summaries (n, sum, sum of squares) and each arm's fallback rate;
- `stats`: tests on summaries (Welch, Holm, sample ratio) with a typed `Settings`; a comparison
  that cannot be computed gets a status code and a message, never an exception;
- `ceiling`: the oracle and random as reference points (`ceiling_from_sessions` for the simulator);
- `report`: `build_report` puts them together into a `Report`;
- `render`: report.md, effects.csv, report.json, ab_test.png, ceiling.png;
- `days`: several days' report.json -> days.png and days.md;
- `cli`: the commands above (exit codes 0 written, 1 data problem, 2 usage); `errors`.
"""

from script.ab.ceiling import ceiling_from_sessions, load_ceiling
from script.ab.cli import main
from script.ab.days import write_days
from script.ab.errors import ReportError
from script.ab.metrics import (
    LOWER_IS_BETTER,
    METRICS,
    fallback_rates,
    load_events,
    summarize,
    user_metrics,
)
from script.ab.render import markdown_table, render_table, text_table, write_report
from script.ab.report import (
    Report,
    build_report,
    compare_all,
    compare_arm,
    sample_ratio,
)
from script.ab.stats import Effect, SampleMean, SampleRatio, Settings, WelchTest

__all__ = [
    "LOWER_IS_BETTER",
    "METRICS",
    "Effect",
    "Report",
    "ReportError",
    "SampleMean",
    "SampleRatio",
    "Settings",
    "WelchTest",
    "build_report",
    "ceiling_from_sessions",
    "compare_all",
    "compare_arm",
    "fallback_rates",
    "load_ceiling",
    "load_events",
    "main",
    "markdown_table",
    "render_table",
    "sample_ratio",
    "summarize",
    "text_table",
    "user_metrics",
    "write_days",
    "write_report",
]
