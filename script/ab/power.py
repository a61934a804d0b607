"""Power: the smallest effect a test of a given size detects, and the size a given effect needs.

With a two-sided test at level alpha, power 1 - beta and the relative effect Delta, an arm whose
true effect is Delta reaches significance with probability ``Phi(Delta / SE - critical)``, so it
needs ``Delta = (critical + z_power) * SE(Delta)``. The standard error is the relative effect's
(delta method) with the treatment's mean moved by Delta and its variance R times the control's:

    SE(Delta)**2 = cv**2 * (R / n_treatment + (1 + Delta)**2 / n_control),   cv = sd / mean

of the control (from a pilot: a logged dataset or the simulator; with CUPED the sd of the
adjusted metric). gbstats' power calculator takes R = 1 (equal variances), the default here too;
but a treatment that changes the metric's spread needs its own R: in bench/bench_ab_truth.py an
arm with 1.19 times the control's variance, planned with R = 1, reached 76 % power instead of 80 %
(80 % with R measured by a pilot A/B; on the world before issue 24, R = 1.71 and 67 %). A pilot
A/B (`plan --treatment ARM`) measures R; the report's MDE uses both arms' variances.

The critical value is the normal quantile (fixed horizon) or the confidence
sequence's at the final size (sequential; power at the last look, the conservative reading: a
sequence can also stop earlier). Several treatment arms share alpha by Bonferroni
(``alpha / comparisons``), the bound Holm's first step uses.

- `minimum_detectable_effect(cv, n_control, n_treatment, ...)`: Delta at a given size (the
  report's MDE column);
- `users_per_arm(cv, mde, ...)`: the users each arm needs for Delta (`python -m script.ab plan`).
"""

from __future__ import annotations

import math

from scipy import optimize, special

from script.ab import sequential as seq


def critical_value(
    alpha: float, users: float, sequential: bool = False, tuning: float = seq.DEFAULT_TUNING
) -> float:
    if sequential:
        return seq.critical(users, alpha, tuning)
    return float(special.ndtri(1 - alpha / 2))


def minimum_detectable_effect(
    cv: float,
    n_control: float,
    n_treatment: float,
    alpha: float = 0.05,
    power: float = 0.8,
    sequential: bool = False,
    tuning: float = seq.DEFAULT_TUNING,
    variance_ratio: float = 1.0,
) -> float | None:
    """The relative effect (a fraction) detected with `power`; None where no effect is.
    ``variance_ratio``: the treatment's variance over the control's (R above)."""
    if n_control < 2 or n_treatment < 2 or not math.isfinite(cv):
        return None
    k = critical_value(alpha, n_control + n_treatment, sequential, tuning)
    k += float(special.ndtri(power))
    s2 = (k * cv) ** 2
    # Delta**2 = s2 * (R/n_t + (1 + Delta)**2 / n_c): a quadratic in Delta, the positive root
    a = 1 - s2 / n_control
    if a <= 0:
        return None
    b = -2 * s2 / n_control
    c = -s2 * (variance_ratio / n_treatment + 1 / n_control)
    return (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)


def users_per_arm(
    cv: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    comparisons: int = 1,
    sequential: bool = False,
    tuning: float = seq.DEFAULT_TUNING,
    variance_ratio: float = 1.0,
) -> int:
    """Users each arm needs so that a relative effect `mde` (a fraction) is detected."""
    if not mde > 0 or not cv > 0:
        raise ValueError("the effect and the metric's coefficient of variation must be positive")
    level = alpha / max(comparisons, 1)
    z_power = float(special.ndtri(power))

    def needed(n: float) -> float:
        k = critical_value(level, 2 * n, sequential, tuning) + z_power
        return (k * cv) ** 2 * (variance_ratio + (1 + mde) ** 2) / mde**2

    if not sequential:
        return math.ceil(needed(1.0))  # the normal critical value does not depend on n
    # the sequence's critical value grows with n (slowly): find n = needed(n)
    high = needed(1.0)
    while needed(high) > high:
        high *= 2
    return math.ceil(optimize.brentq(lambda n: needed(n) - n, 1.0, high, xtol=0.5))
