"""Guardrails: a metric that must not get worse than a margin, checked for every arm.

A non-inferiority test: the arm passes when its effect's interval (the report's own: Fieller's,
CUPED-adjusted and always-valid where the report is) lies entirely on the good side of the
margin, e.g. for ``mean_request_latency`` with margin 20 % when the upper bound is below +20 %.
Otherwise it fails: "worse than the margin" when even the best bound is beyond it, "not shown
within the margin" when the interval straddles it (more users may still show it). A comparison
with no interval (too few users, ...) has no verdict.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from script.ab.compare import Effect
from script.ab.config import Guardrail

PASS, FAIL, NO_VERDICT = "pass", "fail", "no verdict"


@dataclass
class GuardrailResult:
    arm: str
    metric: str
    margin_pct: float
    lower_is_better: bool
    effect_pct: float | None
    lower_pct: float | None
    upper_pct: float | None
    verdict: str  # pass, fail or no verdict
    reason: str

    @property
    def passed(self) -> bool | None:
        return None if self.verdict == NO_VERDICT else self.verdict == PASS


def check(guardrail: Guardrail, effect: Effect) -> GuardrailResult:
    margin = guardrail.margin_pct
    lower, upper = effect.lower_pct, effect.upper_pct
    result = GuardrailResult(
        effect.arm, guardrail.metric, margin, guardrail.lower_is_better,
        effect.effect_pct, lower, upper, NO_VERDICT, "",
    )  # fmt: skip
    if lower is None or upper is None:
        result.reason = f"no interval ({effect.status}: {effect.message})"
        return result
    # worst and best plausible change, signed so that "bad" is positive
    worst, best = (upper, lower) if guardrail.lower_is_better else (-lower, -upper)
    sign = "+" if guardrail.lower_is_better else "-"
    if worst <= margin:
        result.verdict = PASS
        result.reason = f"the interval stays within {sign}{margin:g} %"
    elif best > margin:
        result.verdict = FAIL
        result.reason = f"worse than the margin: the whole interval is beyond {sign}{margin:g} %"
    else:
        result.verdict = FAIL
        result.reason = f"not shown within the margin: the interval reaches {sign}{worst:.1f} %"
    return result


def check_all(guardrails: Sequence[Guardrail], effects: Sequence[Effect]) -> list[GuardrailResult]:
    """Every guardrail against every arm (in the effects' arm order)."""
    by_key = {(e.arm, e.metric): e for e in effects}
    arms = list(dict.fromkeys(e.arm for e in effects))
    return [
        check(g, by_key[(arm, g.metric)])
        for g in guardrails
        for arm in arms
        if (arm, g.metric) in by_key
    ]
