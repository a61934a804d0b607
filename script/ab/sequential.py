"""Always-valid confidence intervals: the normal-mixture confidence sequence gbstats uses.

A fixed-horizon interval holds its 95 % only when it is looked at once, at a size fixed in
advance; look every day and stop at the first significant day, and the false-positive rate grows
with every look. A confidence sequence holds at every size at once: the probability that it ever
excludes the true effect, however often it is looked at, is at most alpha. gbstats' sequential
mode (Waudby-Smith et al. 2023, "Time-uniform central limit theory", eq. 9) replaces the
t-quantile of the interval ``estimate +- t * SE`` by

    critical(N) = sqrt( (u + 1) / u * (ln(u + 1) - 2 ln(alpha)) ),   u = N * rho**2,
    rho**2 = (-2 ln(alpha) + ln(-2 ln(alpha) + 1)) / N*

where N is the number of users in both arms and N* the **tuning parameter**: the total size at
which the sequence is narrowest (gbstats' ``sequential_tuning_parameter``, default 5,000). Set it
near the size the experiment is expected to reach; far from it the sequence is wider. At N = N*
and alpha = 0.05 the critical value is 3.03 where the fixed interval's is 1.96: always-valid
costs width, the price of peeking.

The always-valid p-value is the smallest alpha whose sequence excludes 0 (`p_value`); it may be
compared with alpha at any look, and Holm over such p-values stays valid at any stopping time.
"""

from __future__ import annotations

import math

DEFAULT_TUNING = 5000  # gbstats' default N*


def rho_squared(alpha: float, tuning: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if not tuning > 0:
        raise ValueError(f"the tuning parameter N* must be positive, got {tuning}")
    log_alpha = -2 * math.log(alpha)
    return (log_alpha + math.log(log_alpha + 1)) / tuning


def critical(n: float, alpha: float, tuning: float = DEFAULT_TUNING) -> float:
    """The multiplier of the standard error at N = n users (both arms) for a 1 - alpha sequence."""
    if n <= 0:
        return math.inf
    u = n * rho_squared(alpha, tuning)
    return math.sqrt((u + 1) / u * (math.log(u + 1) - 2 * math.log(alpha)))


def p_value(z: float, n: float, tuning: float = DEFAULT_TUNING) -> float:
    """The smallest alpha whose sequence at N = n excludes 0, given z = |estimate| / SE.

    `critical` falls as alpha grows (a test checks it), so bisection on log(alpha) finds it.
    """
    z = abs(z)
    if n <= 0 or z == 0:
        return 1.0
    if critical(n, 1 - 1e-12, tuning) >= z:
        return 1.0
    low, high = math.log(1e-300), math.log(1 - 1e-12)  # critical(low) > z >= critical(high)
    if critical(n, math.exp(low), tuning) <= z:
        return 0.0
    for _ in range(100):
        middle = (low + high) / 2
        if critical(n, math.exp(middle), tuning) > z:
            low = middle
        else:
            high = middle
    return math.exp(high)
