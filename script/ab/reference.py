"""Effects measured elsewhere (e.g. the seed report's), beside ours: is their point inside our CI?

A reference file is JSON: ``{"label": "seed", "metric": "mean_time_per_session",
"effects": {"T1": 40.6, "T2": 42.7, "T3": 4.0}}``, effects in % of the control. The report shows,
per listed arm, our effect and interval, the reference's point, and whether the point lies inside
our interval (the interval the report shows: CUPED-adjusted and always-valid where those are on).
A validation figure, never a target: the report only says where the two agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from script.ab.compare import Effect
from script.ab.errors import ReportError


@dataclass(frozen=True)
class Reference:
    label: str
    metric: str
    effects: dict[str, float]  # arm -> effect in % of the control


@dataclass(frozen=True)
class ReferenceRow:
    arm: str
    metric: str
    reference_pct: float
    effect_pct: float | None
    lower_pct: float | None
    upper_pct: float | None

    @property
    def inside(self) -> bool | None:
        """The reference's point inside our interval (None: we have no interval)."""
        if self.lower_pct is None or self.upper_pct is None:
            return None
        return self.lower_pct <= self.reference_pct <= self.upper_pct


def load_reference(path: Path) -> Reference:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        effects = {str(arm): float(value) for arm, value in data["effects"].items()}
        return Reference(str(data.get("label") or "reference"), str(data["metric"]), effects)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise ReportError(
            f"cannot read the reference file {path}: {error!r} (expected "
            '{"label": ..., "metric": ..., "effects": {"T1": 40.6, ...}})'
        ) from error


def against_reference(reference: Reference, effects: list[Effect]) -> list[ReferenceRow]:
    rows = []
    for arm, value in reference.effects.items():
        ours = next((e for e in effects if e.arm == arm and e.metric == reference.metric), None)
        rows.append(ReferenceRow(
            arm, reference.metric, value,
            ours.effect_pct if ours else None,
            ours.lower_pct if ours else None,
            ours.upper_pct if ours else None,
        ))  # fmt: skip
    return rows
