"""CUPED (regression adjustment on a pre-period covariate) from summary statistics, as gbstats does.

Per arm and metric the report keeps a `CupedSample`: the users' metric in the experiment window
(``post``: n, sum, sum of squares), the same metric in the pre-period (``pre``) and the sum of
their products, so, like `SampleMean`, samples of disjoint sets of users add up. gbstats calls
this a ``RegressionAdjustedStatistic``.

For one arm against control, `theta` is the slope of post on pre over the users of both arms
pooled (gbstats' ``compute_theta``: their covariance over the pre-period's variance; 0 when either
has no variance). Each arm's adjusted mean is ``mean(post) - theta * mean(pre)`` and its variance
``var(post) + theta**2 var(pre) - 2 theta cov(post, pre)``: the variance of ``post - theta * pre``
per user. Randomisation makes the arms' pre-period means equal in expectation, so the adjusted
difference estimates the same effect with less variance (by the share ``corr(post, pre)**2``).

Users without pre-period data (new users, or none logged before ``--since``) get the covariate 0,
as GrowthBook's SQL gives them (a LEFT JOIN of the pre-exposure aggregate, ``COALESCE(value, 0)``):
they stay in the analysis and the estimate stays unbiased; they only gain less from the
adjustment. `CupedSample.without_pre` counts them so the report can say how many there were.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from measure.stats import SampleMean


@dataclass(frozen=True)
class CupedSample:
    post: SampleMean
    pre: SampleMean
    sum_products: float  # sum over users of post * pre
    without_pre: int = 0  # users whose pre-period value is missing (counted as 0)
    n: int = field(init=False)

    def __post_init__(self) -> None:
        if self.post.n != self.pre.n:
            raise ValueError(f"post has {self.post.n} users, pre {self.pre.n}")
        object.__setattr__(self, "n", self.post.n)

    @classmethod
    def of(
        cls, post: Sequence[float] | np.ndarray, pre: Sequence[float] | np.ndarray
    ) -> CupedSample:
        """From per-user values; a NaN in ``pre`` is a user without pre-period data (0)."""
        post, pre = np.asarray(post, dtype=float), np.asarray(pre, dtype=float)
        missing = np.isnan(pre)
        pre = np.where(missing, 0.0, pre)
        return cls(SampleMean.of(post), SampleMean.of(pre), float(post @ pre), int(missing.sum()))

    def __add__(self, other: CupedSample) -> CupedSample:
        if not isinstance(other, CupedSample):
            return NotImplemented
        return CupedSample(
            self.post + other.post,
            self.pre + other.pre,
            self.sum_products + other.sum_products,
            self.without_pre + other.without_pre,
        )

    @property
    def finite(self) -> bool:
        return self.post.finite and self.pre.finite and bool(np.isfinite(self.sum_products))

    @property
    def covariance(self) -> float:
        """Sample covariance of post and pre (n - 1 in the denominator); 0 for fewer than 2."""
        if self.n < 2:
            return 0.0
        return (self.sum_products - self.post.sum * self.pre.sum / self.n) / (self.n - 1)

    def adjusted_mean(self, theta: float) -> float:
        return self.post.mean - theta * self.pre.mean

    def adjusted_variance(self, theta: float) -> float:
        """Per-user variance of ``post - theta * pre``."""
        value = self.post.variance + theta**2 * self.pre.variance - 2 * theta * self.covariance
        return max(value, 0.0)  # the sums' rounding can make an exact 0 slightly negative


def theta(a: CupedSample, b: CupedSample) -> float:
    """The pooled slope of post on pre over both arms' users (0 without variance)."""
    joint = a + b
    if joint.pre.variance == 0 or joint.post.variance == 0:
        return 0.0
    return joint.covariance / joint.pre.variance
