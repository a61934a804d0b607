"""Statistics from summaries: each arm's metric reduced to n, sum and sum of squares.

As in GrowthBook's gbstats, the tests never see the users' values, only `SampleMean` summaries,
which add up (`a + b`) across chunks of users: a report can be computed per partition of the
users and merged, and `report.json` records the summaries so others can do the same.

- `Settings`: the significance level and the sample-ratio threshold, checked on construction.
- `WelchTest`: difference of means treatment - control, Welch's t (unequal variances): the
  interval is ``t.ppf(1 - alpha/2, welch_dof) * sqrt(s2_c/n_c + s2_t/n_t)``, as the course
  computed it (and statsmodels' ``CompareMeans.tconfint_diff(usevar="unequal")``).
- `holm`: Holm's step-down correction over many p-values.
- `SampleRatioTest`: chi-square of users per arm against an equal split.
- `compare`: one arm against control on one metric -> an `Effect`, with a status code and a
  message instead of numbers where the comparison cannot be made.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# A variance below this share of the mean square is the rounding of the sums, not spread.
_ROUNDING = 1e-12


@dataclass(frozen=True)
class Settings:
    alpha: float = 0.05  # two-sided significance level of every interval and test
    srm_threshold: float = 0.001  # sample-ratio p-value below which the split is distrusted

    def __post_init__(self) -> None:
        for name in ("alpha", "srm_threshold"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")


DEFAULT_SETTINGS = Settings()


@dataclass(frozen=True)
class SampleMean:
    """n, sum and sum of squares of one metric over a set of users."""

    n: int = 0
    sum: float = 0.0
    sum_squares: float = 0.0

    @classmethod
    def of(cls, values: Sequence[float] | np.ndarray) -> SampleMean:
        values = np.asarray(values, dtype=float)
        return cls(len(values), float(values.sum()), float(np.square(values).sum()))

    def __add__(self, other: SampleMean) -> SampleMean:
        if not isinstance(other, SampleMean):
            return NotImplemented
        return SampleMean(
            self.n + other.n, self.sum + other.sum, self.sum_squares + other.sum_squares
        )

    @property
    def finite(self) -> bool:
        return math.isfinite(self.sum) and math.isfinite(self.sum_squares)

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        """Sample variance (n - 1 in the denominator); 0 for fewer than 2 values."""
        if self.n < 2:
            return 0.0
        spread = self.sum_squares - self.sum * self.sum / self.n
        if spread <= _ROUNDING * self.sum_squares:
            return 0.0
        return spread / (self.n - 1)


class WelchTest:
    """Two-sided Welch t-test and interval for the difference of means treatment - control.

    Needs n >= 2 in both arms (`compare` checks, and says so instead of testing).
    """

    def __init__(
        self, control: SampleMean, treatment: SampleMean, settings: Settings = DEFAULT_SETTINGS
    ):
        self.control, self.treatment, self.settings = control, treatment, settings

    @property
    def diff(self) -> float:
        return self.treatment.mean - self.control.mean

    @property
    def _parts(self) -> tuple[float, float]:
        return (self.control.variance / self.control.n, self.treatment.variance / self.treatment.n)

    @property
    def standard_error(self) -> float:
        return math.sqrt(sum(self._parts))

    @property
    def dof(self) -> float:
        """Welch-Satterthwaite degrees of freedom (infinite when neither arm varies)."""
        c, t = self._parts
        denominator = c**2 / (self.control.n - 1) + t**2 / (self.treatment.n - 1)
        return (c + t) ** 2 / denominator if denominator else math.inf

    @property
    def p_value(self) -> float:
        if self.standard_error == 0:  # both means exact: any difference is certain
            return 0.0 if self.diff else 1.0
        return float(2 * stats.t.sf(abs(self.diff) / self.standard_error, self.dof))

    @property
    def confidence_interval(self) -> tuple[float, float]:
        half = stats.t.ppf(1 - self.settings.alpha / 2, self.dof) * self.standard_error
        return float(self.diff - half), float(self.diff + half)


def holm(p_values: Sequence[float], alpha: float) -> tuple[list[float], list[bool]]:
    """Holm's step-down adjusted p-values and rejections (as statsmodels' multipletests)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return [], []
    order = np.argsort(p)
    factors = np.arange(m, 0, -1)
    sorted_p = p[order]
    # reject the k smallest while p_(i) <= alpha / (m - i); stop at the first that is not
    not_rejected = sorted_p > alpha / factors
    first_kept = np.flatnonzero(not_rejected)
    reject_sorted = np.ones(m, dtype=bool)
    if first_kept.size:
        reject_sorted[first_kept[0] :] = False
    adjusted_sorted = np.minimum(np.maximum.accumulate(sorted_p * factors), 1.0)
    adjusted, reject = np.empty(m), np.empty(m, dtype=bool)
    adjusted[order], reject[order] = adjusted_sorted, reject_sorted
    return adjusted.tolist(), reject.tolist()


@dataclass
class SampleRatio:
    users: dict[str, int]
    chi2: float
    p_value: float
    mismatch: bool


class SampleRatioTest:
    """Chi-square of users per arm against an equal split, the split the salted hash promises."""

    def __init__(self, users: Mapping[str, int], settings: Settings = DEFAULT_SETTINGS):
        self.users, self.settings = dict(users), settings

    @property
    def _chisquare(self) -> tuple[float, float]:
        if len(self.users) < 2:
            return 0.0, 1.0
        chi2, p_value = stats.chisquare(list(self.users.values()))
        return float(chi2), float(p_value)

    @property
    def p_value(self) -> float:
        return self._chisquare[1]

    def result(self) -> SampleRatio:
        chi2, p_value = self._chisquare
        return SampleRatio(self.users, chi2, p_value, p_value < self.settings.srm_threshold)


# Status codes of a comparison that gives no (or not every) number.
TOO_FEW_USERS = "too_few_users"
NOT_FINITE = "not_finite"
NO_VARIANCE = "no_variance"
ZERO_CONTROL_MEAN = "zero_control_mean"
MISSING_METRIC = "missing_metric"


@dataclass
class Effect:
    arm: str
    metric: str
    control_users: int
    treatment_users: int
    control_mean: float | None = None
    treatment_mean: float | None = None
    diff: float | None = None
    diff_lower: float | None = None
    diff_upper: float | None = None
    effect_pct: float | None = None
    lower_pct: float | None = None
    upper_pct: float | None = None
    p_value: float | None = None
    significant: bool | None = None
    p_holm: float | None = None
    significant_holm: bool | None = None
    status: str = "ok"
    message: str = ""


def compare(
    metric: str,
    arm: str,
    control: SampleMean | None,
    treatment: SampleMean | None,
    settings: Settings = DEFAULT_SETTINGS,
) -> Effect:
    """One arm against control on one metric (None: the metric is not in that arm's data)."""
    if control is None or treatment is None:
        effect = Effect(arm, metric, control.n if control else 0, treatment.n if treatment else 0)
        effect.status, effect.message = MISSING_METRIC, f"no values of {metric!r} in both arms"
        return effect
    effect = Effect(arm, metric, control_users=control.n, treatment_users=treatment.n)
    if control.n < 2 or treatment.n < 2:
        effect.status = TOO_FEW_USERS
        effect.message = (
            f"needs at least 2 users with a finished session in each arm "
            f"(control {control.n}, {arm} {treatment.n})"
        )
        return effect
    if not (control.finite and treatment.finite):
        effect.status = NOT_FINITE
        effect.message = f"{metric} has non-finite values (NaN or infinity): no numbers"
        return effect
    test = WelchTest(control, treatment, settings)
    effect.control_mean, effect.treatment_mean = control.mean, treatment.mean
    effect.diff = test.diff
    if control.variance == 0 and treatment.variance == 0:
        effect.status = NO_VARIANCE
        effect.message = "every user has the same value in both arms: no interval"
        return effect
    effect.diff_lower, effect.diff_upper = test.confidence_interval
    effect.p_value = test.p_value
    effect.significant = effect.diff_lower > 0 or effect.diff_upper < 0
    if effect.control_mean == 0:
        effect.status = ZERO_CONTROL_MEAN
        effect.message = "control mean is 0: no effect in %"
        return effect
    scale = 100 / effect.control_mean
    effect.effect_pct = effect.diff * scale
    effect.lower_pct, effect.upper_pct = sorted(
        (effect.diff_lower * scale, effect.diff_upper * scale)
    )
    return effect


def compare_arms(
    summaries: Mapping[str, Mapping[str, SampleMean]],
    control: str,
    metrics: Sequence[str],
    settings: Settings = DEFAULT_SETTINGS,
) -> list[Effect]:
    """Every arm against control on every metric, Holm-corrected over the computed p-values.

    ``summaries`` is ``{arm: {metric: SampleMean}}``; arms in sorted order, control left out.
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
