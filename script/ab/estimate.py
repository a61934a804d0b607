"""One arm against control as an `Estimate`: a difference of means and what its intervals need.

Every interval of the report has the form ``estimate +- critical * SE``; only the estimate and the
critical value change with the method:

- the estimate: the plain difference of means (`welch`) or the CUPED-adjusted one (`cuped`,
  see `script.ab.cuped`), with its variance and Welch-Satterthwaite degrees of freedom;
- the critical value: the t-quantile (fixed horizon: look once) or the confidence sequence's
  (`script.ab.sequential`: look whenever you like), chosen by `Method`.

The effect in % of control is a ratio, ``diff / mean(control)``, and its interval is Fieller's:
every r with ``(diff - r * m)**2 <= critical**2 * Var(diff - r * m)`` (m the control's mean,
unadjusted as in gbstats): the ratios the test of "treatment = (1 + r) * control" does not
reject. Unlike the difference's interval divided by the control mean (the report's interval
before), it counts the control mean's own uncertainty; unlike the delta method (gbstats' relative
interval) it excludes 0 exactly when the test of the difference rejects, so the % interval and
the p-value never disagree. bench/bench_ab_truth.py measures all three on the demo's arms. Where
the control mean itself is not distinguishable from 0 the set is unbounded: no % interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special

from measure.stats import SampleMean
from script.ab import sequential as seq
from script.ab.cuped import CupedSample, theta


@dataclass(frozen=True)
class Estimate:
    control_mean: float  # unadjusted: the base of the effect in %
    treatment_mean: float  # unadjusted
    diff: float  # (adjusted) treatment - control
    variance: float  # Var(diff)
    dof: float  # Welch-Satterthwaite
    control_variance: float  # Var(control mean)
    covariance: float  # Cov(diff, control mean)
    users: int  # both arms: the confidence sequence's N
    theta: float | None = None  # CUPED's slope; None without CUPED

    @property
    def standard_error(self) -> float:
        return math.sqrt(self.variance)


def _welch_dof(parts: tuple[float, float], ns: tuple[int, int]) -> float:
    denominator = sum(p**2 / (n - 1) for p, n in zip(parts, ns, strict=True))
    return sum(parts) ** 2 / denominator if denominator else math.inf


def welch(control: SampleMean, treatment: SampleMean) -> Estimate:
    """The plain difference of means (n >= 2 in both arms)."""
    c, t = control.variance / control.n, treatment.variance / treatment.n
    return Estimate(
        control.mean,
        treatment.mean,
        treatment.mean - control.mean,
        c + t,
        _welch_dof((c, t), (control.n, treatment.n)),
        c,
        -c,
        control.n + treatment.n,
    )


def cuped(control: CupedSample, treatment: CupedSample) -> Estimate:
    """The CUPED-adjusted difference with gbstats' pooled theta (n >= 2 in both arms)."""
    slope = theta(control, treatment)
    c = control.adjusted_variance(slope) / control.n
    t = treatment.adjusted_variance(slope) / treatment.n
    return Estimate(
        control.post.mean,
        treatment.post.mean,
        treatment.adjusted_mean(slope) - control.adjusted_mean(slope),
        c + t,
        _welch_dof((c, t), (control.n, treatment.n)),
        control.post.variance / control.n,
        -(control.post.variance - slope * control.covariance) / control.n,
        control.n + treatment.n,
        slope,
    )


@dataclass(frozen=True)
class Method:
    """How intervals are read: alpha, and fixed-horizon or always-valid (sequential)."""

    alpha: float = 0.05
    sequential: bool = False
    tuning: float = seq.DEFAULT_TUNING  # N*, the sequence's tuning parameter

    def critical(self, estimate: Estimate) -> float:
        if self.sequential:
            return seq.critical(estimate.users, self.alpha, self.tuning)
        return float(special.stdtrit(estimate.dof, 1 - self.alpha / 2))  # t's quantile

    def p_value(self, estimate: Estimate) -> float:
        if estimate.variance == 0:  # both means exact: any difference is certain
            return 0.0 if estimate.diff else 1.0
        z = estimate.diff / estimate.standard_error
        if self.sequential:
            return seq.p_value(z, estimate.users, self.tuning)
        return float(2 * special.stdtr(estimate.dof, -abs(z)))  # two-sided t


def interval(estimate: Estimate, critical: float) -> tuple[float, float]:
    half = critical * estimate.standard_error
    return estimate.diff - half, estimate.diff + half


def relative_interval(estimate: Estimate, critical: float) -> tuple[float, float] | None:
    """Fieller's interval of diff / control mean (a fraction, not %); None when unbounded."""
    m, d, k2 = estimate.control_mean, estimate.diff, critical**2
    a = m * m - k2 * estimate.control_variance
    if a <= 0:  # the control mean is within its own interval of 0
        return None
    b = d * m - k2 * estimate.covariance
    c = d * d - k2 * estimate.variance
    root = math.sqrt(max(b * b - a * c, 0.0))
    return (b - root) / a, (b + root) / a


def relative_delta_interval(estimate: Estimate, critical: float) -> tuple[float, float] | None:
    """The delta method's interval of diff / control mean (gbstats' relative interval)."""
    m, d = estimate.control_mean, estimate.diff
    if m == 0:
        return None
    r = d / m
    variance = (
        estimate.variance / m**2
        - 2 * d * estimate.covariance / m**3
        + d * d * estimate.control_variance / m**4
    )
    half = critical * math.sqrt(max(variance, 0.0))
    return r - half, r + half
