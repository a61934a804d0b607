"""The four off-policy estimators, OBP's formulas (Saito et al., Open Bandit Pipeline,
`obp.ope.InverseProbabilityWeighting` and its siblings), on per-step arrays.

Per logged step i: the reward r_i, the importance weight w_i and the reward model's predictions
q_log_i = q(x_i, a_i) (the logged action) and q_cand_i = q(x_i, a'_i) (the candidate's action):

    IPS    mean(w r)
    SNIPS  sum(w r) / sum(w)
    DM     mean(q_cand)
    DR     mean(q_cand + w (r - q_log))

OBP's weight is pi_e(a_i | x_i) / pi_b(a_i | x_i) and its DM/DR term sum_a pi_e(a | x_i) q(x_i, a).
Here the candidate's action a'_i is *sampled* once per step (`script.ope.replay`), and
w_i = 1[a'_i = a_i] / pi_b(a_i | x_i), q_cand_i = q(x_i, a'_i): their expectations over the draw
are OBP's terms exactly, so every estimator keeps its (un)biasedness, for a stochastic or a
deterministic candidate alike (a one-hot `action_dist` in OBP's terms; the test checks OBP's
numbers on such inputs).

Intervals: the normal 95 % interval of the mean of each estimator's per-step terms (SNIPS by the
delta method), with the variance clustered by user: a user's steps share the user's taste and
session, so they are not independent draws, and the online A/B's unit is the user too. (OBP's
`estimate_interval` bootstraps steps as if independent, which is narrower on such data.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Z95 = 1.959964


@dataclass(frozen=True)
class Estimate:
    """One estimator's value with its 95 % interval and standard error."""

    name: str
    value: float
    low: float
    high: float
    se: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high


def clustered_se(terms: np.ndarray, clusters: np.ndarray) -> float:
    """The standard error of mean(terms) with the variance summed within clusters (users):
    sqrt(G / (G - 1) * sum_g (sum_{i in g} (z_i - mean))^2) / n."""
    n = len(terms)
    if n < 2:
        return float("nan")
    _, group = np.unique(clusters, return_inverse=True)
    sums = np.bincount(group, weights=terms - terms.mean())
    g = len(sums)
    if g < 2:
        return float("nan")
    return float(np.sqrt(g / (g - 1) * np.sum(sums**2)) / n)


def mean_estimate(name: str, terms: np.ndarray, clusters: np.ndarray) -> Estimate:
    value = float(terms.mean())
    se = clustered_se(terms, clusters)
    return Estimate(name, value, value - Z95 * se, value + Z95 * se, se)


def ips(reward: np.ndarray, weight: np.ndarray, clusters: np.ndarray) -> Estimate:
    return mean_estimate("IPS", weight * reward, clusters)


def snips(reward: np.ndarray, weight: np.ndarray, clusters: np.ndarray) -> Estimate:
    """sum(w r) / sum(w); its standard error by the delta method: the mean of
    w (r - V) / mean(w)."""
    total = float(weight.sum())
    if total <= 0:
        nan = float("nan")
        return Estimate("SNIPS", nan, nan, nan, nan)
    value = float((weight * reward).sum() / total)
    se = clustered_se(weight * (reward - value) / weight.mean(), clusters)
    return Estimate("SNIPS", value, value - Z95 * se, value + Z95 * se, se)


def direct(q_cand: np.ndarray, clusters: np.ndarray) -> Estimate:
    return mean_estimate("DM", q_cand, clusters)


def doubly_robust(
    reward: np.ndarray, weight: np.ndarray, q_log: np.ndarray, q_cand: np.ndarray, clusters
) -> Estimate:
    return mean_estimate("DR", q_cand + weight * (reward - q_log), clusters)


def effective_sample_size(weight: np.ndarray) -> float:
    """Kish's effective sample size of the weights, (sum w)^2 / sum w^2: how many on-policy
    steps the weighted ones are worth (0 when no step matched)."""
    squares = float(np.sum(weight**2))
    return float(weight.sum()) ** 2 / squares if squares > 0 else 0.0
