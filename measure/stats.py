"""Statistics from summaries: each group's metric reduced to n, sum and sum of squares.

As in GrowthBook's gbstats, the tests never see the users' values, only `SampleMean` summaries
(and, with CUPED, `script.ab.cuped.CupedSample`), which add up (`a + b`) across chunks of users:
a report can be computed per partition of the users and merged, and `report.json` records the
summaries so others can do the same. The A/B report (`script.ab`) and the simulator's
calibration (`sim.calibrate`) compare with the same tests.

- `Settings`: alpha, the sample-ratio threshold, the sequential mode and its tuning parameter,
  the power an MDE is stated at; checked on construction.
- `WelchTest`: difference of means treatment - control, Welch's t (unequal variances): the
  interval is ``t.ppf(1 - alpha/2, welch_dof) * sqrt(s2_c/n_c + s2_t/n_t)``, as the course
  computed it (and statsmodels' ``CompareMeans.tconfint_diff(usevar="unequal")``).
- `holm`: Holm's step-down correction over many p-values (statsmodels' ``multipletests``).
- `SampleRatioTest`: chi-square of users per arm against the configured weights (equal by default).

One arm against control on one metric, with CUPED and always-valid intervals: `script.ab.compare`.
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
    sequential: bool = False  # always-valid intervals (a confidence sequence) instead of t
    tuning: float = 5000  # the sequence's N*: total users where it is narrowest (gbstats' default)
    power: float = 0.8  # the power each metric's minimum detectable effect is stated at

    def __post_init__(self) -> None:
        for name in ("alpha", "srm_threshold", "power"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if not (math.isfinite(self.tuning) and self.tuning > 0):
            raise ValueError(f"tuning must be a positive number of users, got {self.tuning}")


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
    """Holm's step-down adjusted p-values and rejections: statsmodels' ``multipletests``."""
    if len(p_values) == 0:
        return [], []
    from statsmodels.stats.multitest import multipletests  # 3 s to import: only when needed

    reject, adjusted, _, _ = multipletests(np.asarray(p_values, dtype=float), alpha, "holm")
    return [float(p) for p in adjusted], [bool(r) for r in reject]


@dataclass
class SampleRatio:
    users: dict[str, int]
    chi2: float
    p_value: float
    mismatch: bool


class SampleRatioTest:
    """Chi-square of users per arm against the split the assignment promises: the configured
    weights (`botify.experiments`), an equal split when none are given."""

    def __init__(
        self,
        users: Mapping[str, int],
        settings: Settings = DEFAULT_SETTINGS,
        weights: Mapping[str, float] | None = None,
    ):
        self.users, self.settings = dict(users), settings
        self.weights = dict(weights) if weights is not None else None

    @property
    def expected_shares(self) -> dict[str, float]:
        """Each arm's expected share of the users seen (arms seen only; renormalised)."""
        if self.weights is None:
            return {arm: 1 / len(self.users) for arm in self.users}
        total = sum(self.weights.get(arm, 0.0) for arm in self.users)
        return {arm: self.weights.get(arm, 0.0) / total for arm in self.users}

    @property
    def _chisquare(self) -> tuple[float, float]:
        if len(self.users) < 2:
            return 0.0, 1.0
        if self.weights is not None and any(arm not in self.weights for arm in self.users):
            return math.inf, 0.0  # users in an arm the config does not have: not the split
        observed = np.array(list(self.users.values()), dtype=float)
        expected = observed.sum() * np.array(list(self.expected_shares.values()))
        if (expected == 0).any():
            return math.inf, 0.0  # users where the config's weight is 0
        chi2, p_value = stats.chisquare(observed, expected)
        return float(chi2), float(p_value)

    @property
    def p_value(self) -> float:
        return self._chisquare[1]

    def result(self) -> SampleRatio:
        chi2, p_value = self._chisquare
        return SampleRatio(self.users, chi2, p_value, p_value < self.settings.srm_threshold)
