"""The ceiling: where each arm sits between a random recommender and the oracle.

The simulator runs the oracle (it knows the hidden session interest) and the random agent
in-process on the same world and users, and writes their user-level means (the report's own
metrics, computed the report's way: sessions -> users -> mean over users) as JSON:

    {"sessions": n, "agents": {"oracle": {"mean_time_per_session": x, ...}, "random": {...}},
     "counts": {"oracle": {"sessions": n, "users": u}, ...}}

`sessions` is the smallest number of sessions any agent ran; `counts` is optional. Metrics an
agent lacks are not shown. The simulator writes it with `measure.ceiling.ceiling_from_sessions`
(the file's one writer; `load_ceiling` below is its reader).
With it the report shows each arm's metric in three forms: in % of control (the effect), in % of
the oracle's value, and as its position between random (0 %) and the oracle (100 %).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from measure.ceiling import REFERENCES
from measure.metrics import METRICS
from measure.stats import SampleMean
from script.ab.compare import Effect
from script.ab.errors import ReportError


@dataclass(frozen=True)
class Ceiling:
    source: str
    sessions: int | None
    agents: dict[str, dict[str, float]]  # random and oracle: metric -> user-level mean
    warnings: tuple[str, ...] = ()

    @property
    def metrics(self) -> list[str]:
        """The report's metrics that both references have, in the report's order."""
        return [m for m in METRICS if all(m in self.agents[r] for r in REFERENCES)]


def load_ceiling(path: Path) -> Ceiling:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ReportError(f"cannot read the ceiling file {path}: {error}") from error
    agents = data.get("agents") if isinstance(data, dict) else None
    agents = agents if isinstance(agents, dict) else {}
    missing = [r for r in REFERENCES if not isinstance(agents.get(r), dict)]
    if missing:
        raise ReportError(
            f"ceiling file {path}: expected {{'agents': {{'random': {{...}}, 'oracle': {{...}}}}}}"
            f"; missing {', '.join(missing)}"
        )
    warnings = []
    kept: dict[str, dict[str, float]] = {}
    for reference in REFERENCES:
        kept[reference] = {}
        for metric, value in agents[reference].items():
            if metric not in METRICS:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                warnings.append(
                    f"ceiling: {reference} {metric} = {value!r} is not a number; not shown"
                )
                continue
            kept[reference][metric] = float(value)
    if not [m for m in METRICS if all(m in kept[r] for r in REFERENCES)]:
        warnings.append("ceiling: random and oracle share none of the report's metrics")
    sessions = data.get("sessions")
    sessions = sessions if isinstance(sessions, int) and not isinstance(sessions, bool) else None
    return Ceiling(str(path), sessions, kept, tuple(warnings))


@dataclass
class CeilingRow:
    """One arm's (or reference agent's) metric against the ceiling."""

    arm: str
    metric: str
    value: float
    pct_of_oracle: float | None  # None where the oracle's value is 0
    position_pct: float | None  # 0 = random, 100 = oracle; None where they are equal
    vs_control_pct: float | None = None
    vs_control_lower: float | None = None
    vs_control_upper: float | None = None


@dataclass
class CeilingResult:
    source: str
    sessions: int | None
    agents: dict[str, dict[str, float]]
    rows: list[CeilingRow] = field(default_factory=list)


def _row(arm: str, metric: str, value: float, ceiling: Ceiling) -> CeilingRow:
    oracle, random = ceiling.agents["oracle"][metric], ceiling.agents["random"][metric]
    return CeilingRow(
        arm,
        metric,
        value,
        pct_of_oracle=100 * value / oracle if oracle else None,
        position_pct=100 * (value - random) / (oracle - random) if oracle != random else None,
    )


def against_ceiling(
    ceiling: Ceiling,
    summaries: Mapping[str, Mapping[str, SampleMean]],
    effects: Sequence[Effect],
    control: str,
) -> CeilingResult:
    """Per metric: random, control, the other arms (sorted), then the oracle."""
    arms = [control] + sorted(set(summaries) - {control})
    by_key = {(e.arm, e.metric): e for e in effects}
    result = CeilingResult(ceiling.source, ceiling.sessions, ceiling.agents)
    for metric in ceiling.metrics:
        result.rows.append(_row("random", metric, ceiling.agents["random"][metric], ceiling))
        for arm in arms:
            summary = summaries.get(arm, {}).get(metric)
            if summary is None or summary.n == 0 or not summary.finite:
                continue
            row = _row(arm, metric, summary.mean, ceiling)
            effect = by_key.get((arm, metric))
            if effect is not None:
                row.vs_control_pct = effect.effect_pct
                row.vs_control_lower, row.vs_control_upper = effect.lower_pct, effect.upper_pct
            result.rows.append(row)
        result.rows.append(_row("oracle", metric, ceiling.agents["oracle"][metric], ceiling))
    return result
