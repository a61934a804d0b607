"""One arm against control on one metric -> an `Effect`; every arm and metric, Holm-corrected.

The input is each arm's summary of the metric: a `SampleMean` (n, sum, sum of squares) for the
plain comparison, or a `CupedSample` (with the pre-period's sums and the cross-products) for
CUPED. `Settings` chooses fixed-horizon or always-valid (sequential) intervals. The effect in % of
control comes with Fieller's interval (`script.ab.estimate`), the p-value of the same test, and
the metric's minimum detectable effect at this size (`script.ab.power`, with both arms' observed
variances). CUPED is skipped, with a message, for an arm and metric whose pre-period means differ
between the arms beyond chance (p below the sample-ratio threshold, 0.001): randomisation makes
them equal, so such a pre-period was not untreated. With CUPED the effect also
records the plain (unadjusted) effect and interval beside it, and by how much CUPED narrowed the
interval; an effect that cannot be computed gets a status code and a message instead of numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from measure.stats import DEFAULT_SETTINGS, SampleMean, Settings, holm
from script.ab import estimate as est
from script.ab import power
from script.ab.cuped import CupedSample

Summary = SampleMean | CupedSample

# Status codes of a comparison that gives no (or not every) number.
TOO_FEW_USERS = "too_few_users"
NOT_FINITE = "not_finite"
NO_VARIANCE = "no_variance"
ZERO_CONTROL_MEAN = "zero_control_mean"
UNBOUNDED_PCT = "unbounded_pct"
MISSING_METRIC = "missing_metric"


@dataclass
class Effect:
    arm: str
    metric: str
    control_users: int
    treatment_users: int
    control_mean: float | None = None  # unadjusted, as every mean the report shows
    treatment_mean: float | None = None
    diff: float | None = None  # treatment - control (CUPED-adjusted with CUPED)
    diff_lower: float | None = None
    diff_upper: float | None = None
    effect_pct: float | None = None  # diff in % of the control mean
    lower_pct: float | None = None  # Fieller's interval of the effect in %
    upper_pct: float | None = None
    p_value: float | None = None  # always-valid in the sequential mode
    significant: bool | None = None
    p_holm: float | None = None
    significant_holm: bool | None = None
    status: str = "ok"
    message: str = ""
    method: str = "welch"  # "welch" or "cuped"
    sequential: bool = False  # always-valid interval (confidence sequence) instead of t
    mde_pct: float | None = None  # the effect this size detects with Settings.power
    theta: float | None = None  # CUPED's slope
    without_pre: int | None = None  # CUPED: users of both arms without pre-period data
    raw_effect_pct: float | None = None  # CUPED: the unadjusted effect and interval beside it
    raw_lower_pct: float | None = None
    raw_upper_pct: float | None = None
    ci_narrower_pct: float | None = None  # CUPED: 100 * (1 - width / unadjusted width), in %
    pre_balance_p: float | None = None  # CUPED: Welch p of the arms' pre-period means
    stop_look: int | None = None  # sequential: first look whose interval excluded 0


def _status(effect: Effect, code: str, message: str) -> Effect:
    effect.status, effect.message = code, message
    return effect


def _percent(interval: tuple[float, float] | None) -> tuple[float | None, float | None]:
    if interval is None:
        return None, None
    return 100 * interval[0], 100 * interval[1]


def _pre_balance(control: CupedSample, treatment: CupedSample) -> float | None:
    """Welch's p-value of the two arms' pre-period means. Random assignment makes them equal in
    expectation; a tiny p says the pre-period was not untreated (the arms already differed,
    e.g. their code ran before --since) and CUPED would subtract part of the effect."""
    if control.n < 2 or treatment.n < 2:
        return None
    estimate = est.welch(control.pre, treatment.pre)
    if estimate.variance == 0:
        return None
    return est.Method().p_value(estimate)


def compare(
    metric: str,
    arm: str,
    control: Summary | None,
    treatment: Summary | None,
    settings: Settings = DEFAULT_SETTINGS,
) -> Effect:
    """One arm against control on one metric (None: the metric is not in that arm's data)."""
    if control is None or treatment is None:
        effect = Effect(arm, metric, control.n if control else 0, treatment.n if treatment else 0)
        return _status(effect, MISSING_METRIC, f"no values of {metric!r} in both arms")
    effect = Effect(arm, metric, control_users=control.n, treatment_users=treatment.n)
    effect.sequential = settings.sequential
    if control.n < 2 or treatment.n < 2:
        return _status(
            effect,
            TOO_FEW_USERS,
            f"needs at least 2 users with a finished session in each arm "
            f"(control {control.n}, {arm} {treatment.n})",
        )
    if not (control.finite and treatment.finite):
        return _status(
            effect, NOT_FINITE, f"{metric} has non-finite values (NaN or infinity): no numbers"
        )
    method = est.Method(settings.alpha, settings.sequential, settings.tuning)
    if isinstance(control, CupedSample) and isinstance(treatment, CupedSample):
        balance = _pre_balance(control, treatment)
        if balance is not None and balance < settings.srm_threshold:
            # not a clean pre-period for this metric: the plain comparison, and say why
            effect = compare(metric, arm, control.post, treatment.post, settings)
            effect.pre_balance_p = balance
            effect.message = (
                f"the arms' pre-period means differ (p = {balance:.2g}): the pre-period is not "
                "untreated for this metric, so no CUPED here (the plain comparison)"
            )
            return effect
        estimate = est.cuped(control, treatment)
        raw = est.welch(control.post, treatment.post)
        effect.method, effect.theta = "cuped", estimate.theta
        effect.without_pre = control.without_pre + treatment.without_pre
        effect.pre_balance_p = balance
        variances = (
            control.adjusted_variance(estimate.theta or 0.0),
            treatment.adjusted_variance(estimate.theta or 0.0),
        )
    elif isinstance(control, SampleMean) and isinstance(treatment, SampleMean):
        estimate, raw = est.welch(control, treatment), None
        variances = (control.variance, treatment.variance)
    else:
        raise TypeError("control and treatment must be summaries of the same kind")
    effect.control_mean, effect.treatment_mean = estimate.control_mean, estimate.treatment_mean
    effect.diff = estimate.diff
    if estimate.variance == 0:
        return _status(
            effect, NO_VARIANCE, "every user has the same value in both arms: no interval"
        )
    critical = method.critical(estimate)
    effect.diff_lower, effect.diff_upper = est.interval(estimate, critical)
    effect.p_value = method.p_value(estimate)
    effect.significant = effect.diff_lower > 0 or effect.diff_upper < 0
    if estimate.control_mean == 0:
        return _status(effect, ZERO_CONTROL_MEAN, "control mean is 0: no effect in %")
    effect.effect_pct = 100 * estimate.diff / estimate.control_mean
    effect.lower_pct, effect.upper_pct = _percent(est.relative_interval(estimate, critical))
    mde = power.minimum_detectable_effect(
        math.sqrt(variances[0]) / abs(estimate.control_mean),
        control.n,
        treatment.n,
        settings.alpha,
        settings.power,
        settings.sequential,
        settings.tuning,
        variances[1] / variances[0] if variances[0] else 1.0,
    )
    effect.mde_pct = None if mde is None else 100 * mde
    if raw is not None:
        effect.raw_effect_pct = 100 * raw.diff / raw.control_mean
        bounds = est.relative_interval(raw, method.critical(raw)) if raw.variance else None
        effect.raw_lower_pct, effect.raw_upper_pct = _percent(bounds)
        if None not in (effect.lower_pct, effect.upper_pct, effect.raw_lower_pct):
            width = effect.upper_pct - effect.lower_pct  # type: ignore[operator]
            raw_width = effect.raw_upper_pct - effect.raw_lower_pct  # type: ignore[operator]
            effect.ci_narrower_pct = 100 * (1 - width / raw_width) if raw_width else None
    if effect.lower_pct is None:
        return _status(
            effect,
            UNBOUNDED_PCT,
            "the control mean is not distinguishable from 0: no interval in %",
        )
    return effect


def compare_arms(
    summaries: Mapping[str, Mapping[str, Summary]],
    control: str,
    metrics: Sequence[str],
    settings: Settings = DEFAULT_SETTINGS,
) -> list[Effect]:
    """Every arm against control on every metric, Holm-corrected over the computed p-values.

    ``summaries`` is ``{arm: {metric: SampleMean or CupedSample}}``; arms in sorted order,
    control left out.
    """
    empty = {metric: SampleMean() for metric in metrics}  # an arm nobody finished a session in
    base = summaries.get(control, empty)
    effects = [
        compare(metric, arm, base.get(metric), summaries[arm].get(metric), settings)
        for arm in sorted(set(summaries) - {control})
        for metric in metrics
    ]
    tested = [(e, e.p_value) for e in effects if e.p_value is not None]
    adjusted, reject = holm([p for _, p in tested], settings.alpha)
    for (e, _), p, r in zip(tested, adjusted, reject, strict=True):
        e.p_holm, e.significant_holm = p, r
    return effects
