"""What the experiment config says about analysis: weights, the decision metric, guardrails.

The A/B report reads the same file the service routes by (`config/experiments.yml`,
`--experiments FILE`): the arms' weights and the coverage (`botify.experiments`: the sample-ratio
check expects the weights' split) and, per experiment, an optional ``analysis`` block:

    experiments:
      - name: AB
        arms: [...]
        analysis:
          decision: mean_time_per_session          # the metric the decision rests on
          guardrails:                              # must not get worse by more than the margin
            - {metric: mean_request_latency, margin_pct: 20}    # lower is better: at most +20 %
            - {metric: mean_tracks_per_session, margin_pct: 5}  # higher is better: at most -5 %

A guardrail passes when the whole interval of its effect stays within the margin (a
non-inferiority test at the report's alpha, one-sided alpha / 2: the bound of the report's own
two-sided interval); see `script.ab.guardrails`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from botify.experiments import Experiments
from measure.metrics import LOWER_IS_BETTER, METRICS
from script.ab.errors import ReportError

DEFAULT_DECISION = "mean_time_per_session"


@dataclass(frozen=True)
class Guardrail:
    metric: str
    margin_pct: float  # the largest change in the bad direction allowed, in % of control

    @property
    def lower_is_better(self) -> bool:
        return self.metric in LOWER_IS_BETTER

    def describe(self) -> str:
        sign = "+" if self.lower_is_better else "-"
        return f"{self.metric} at most {sign}{self.margin_pct:g} %"


@dataclass(frozen=True)
class Analysis:
    experiment: str
    decision: str = DEFAULT_DECISION
    guardrails: tuple[Guardrail, ...] = ()
    weights: dict[str, float] | None = None  # None: the equal split
    coverage: float = 1.0
    source: str | None = None  # the config file
    arms: tuple[str, ...] = field(default=())


def load_analysis(path: Path | None, experiment: str) -> Analysis:
    """The experiment's analysis settings from the config file; defaults without a file."""
    if path is None:
        return Analysis(experiment)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        config = Experiments.from_dict(raw)
    except (OSError, yaml.YAMLError, ValueError, KeyError, TypeError) as error:
        raise ReportError(f"cannot read the experiments config {path}: {error}") from error
    try:
        routing = config.experiment(experiment)
    except KeyError:
        names = ", ".join(e.name for e in config.experiments)
        raise ReportError(f"experiment {experiment!r} is not in {path} (it has: {names})") from None
    block = next(e for e in raw["experiments"] if str(e.get("name")) == experiment)
    decision, guardrails = _analysis_block(block.get("analysis") or {}, path)
    return Analysis(
        experiment,
        decision,
        guardrails,
        routing.weights,
        routing.coverage,
        str(path),
        tuple(arm.name for arm in routing.arms),
    )


def _analysis_block(block: Any, path: Path) -> tuple[str, tuple[Guardrail, ...]]:
    if not isinstance(block, dict):
        raise ReportError(f"{path}: `analysis` must be a mapping")
    unknown = set(block) - {"decision", "guardrails"}
    if unknown:
        raise ReportError(f"{path}: unknown analysis key(s) {sorted(unknown)}")
    decision = str(block.get("decision", DEFAULT_DECISION))
    if decision not in METRICS:
        raise ReportError(f"{path}: decision metric {decision!r} is not one of {list(METRICS)}")
    guardrails = []
    for item in block.get("guardrails") or []:
        if not isinstance(item, dict) or set(item) != {"metric", "margin_pct"}:
            raise ReportError(f"{path}: a guardrail is {{metric: M, margin_pct: X}}, got {item!r}")
        metric, margin = str(item["metric"]), item["margin_pct"]
        if metric not in METRICS:
            raise ReportError(f"{path}: guardrail metric {metric!r} is not one of {list(METRICS)}")
        if isinstance(margin, bool) or not isinstance(margin, int | float):
            raise ReportError(f"{path}: guardrail {metric}: margin_pct must be a number")
        if not (math.isfinite(margin) and margin > 0):
            raise ReportError(f"{path}: guardrail {metric}: margin_pct must be positive")
        guardrails.append(Guardrail(metric, float(margin)))
    return decision, tuple(guardrails)
