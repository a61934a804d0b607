"""The A/B report: events -> sessions -> user-level metrics -> per-arm summaries -> tests.

    python -m script.ab [report] --data DATASET --experiment AB --out DIR [--alpha 0.05]
        [--control C] [--since MS] [--until MS] [--ceiling FILE] [--experiments FILE]
        [--cuped auto|on|off] [--pre-since MS] [--sequential --looks N --tuning N*] [--power P]
    python -m script.ab days --report DIR [DIR ...] --out DIR [--metric M] [--label NAME ...]
    python -m script.ab plan --metric M --mde PCT [--alpha --power --arms --cuped --sequential]
        (--data DATASET [--experiment AB --arm C --since --until] | --world DIR [--sessions N])

Modules, in the order data flows:

- `measure.metrics` (the bottom layer, shared with the simulator): the course notebook's
  user-level metrics and the per-arm summaries (n, sum, sum of squares); `metrics`: the dataset's
  events for one experiment and window, and each arm's fallback rate;
- `measure.stats`: summaries and tests on them (Welch, Holm, sample ratio against the weights)
  with a typed `Settings`;
- `cuped` (gbstats' regression adjustment from sums), `sequential` (the always-valid confidence
  sequence), `estimate` (one difference of means, its interval and Fieller's interval in %),
  `power` (MDE and sample sizes);
- `compare`: one arm against control -> an `Effect`; a comparison that cannot be computed gets a
  status code and a message, never an exception;
- `config` (weights, decision metric and guardrails from the experiments config), `guardrails`
  (non-inferiority verdicts);
- `ceiling`: the oracle and random as reference points (the file `measure.ceiling` defines);
- `report`: `build_report` puts them together into a `Report`;
- `render`: report.md, effects.csv, report.json, ab_test.png, ceiling.png;
- `days`: several days' report.json -> days.png and days.md;
- `plan`: a pilot's variance -> users per arm (`python -m script.ab plan`);
- `cli`: the commands above (exit codes 0 written, 1 data problem, 2 usage); `errors`.
"""

from measure.ceiling import ceiling_from_sessions
from measure.metrics import LOWER_IS_BETTER, METRICS, summarize, user_metrics
from measure.stats import SampleMean, SampleRatio, Settings, WelchTest
from script.ab.ceiling import load_ceiling
from script.ab.cli import main
from script.ab.compare import Effect
from script.ab.cuped import CupedSample
from script.ab.days import write_days
from script.ab.errors import ReportError
from script.ab.metrics import fallback_rates, load_events
from script.ab.render import markdown_table, render_table, text_table, write_report
from script.ab.report import (
    Report,
    build_report,
    compare_all,
    compare_arm,
    sample_ratio,
)

__all__ = [
    "LOWER_IS_BETTER",
    "METRICS",
    "CupedSample",
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
