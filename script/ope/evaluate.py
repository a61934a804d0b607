"""The library function: a logged dataset and a candidate in, the estimates out (`OpeResult`).

Support. IPS-type estimates are unbiased only where the logging policy could have served what the
candidate serves. The mean importance weight measures it: its expectation is the share of the
candidate's choices that the logging policy gives a positive chance (1 under full support), and it
is printed with its interval. No estimate is given (`OpeResult.refusal` says why) when

- fewer than `MIN_MATCHED` steps matched (the logged track is the candidate's draw),
- the effective sample size (Kish's, of the weights) is below `MIN_ESS`, or
- the mean weight's whole interval lies below `MIN_SUPPORT`: at least a tenth of the
  candidate's choices are ones the logging policy never makes (a deterministic logging arm
  under another candidate, TopPop over 10 under TopPop over 100, ...), or
- the mean weight's whole interval lies above 1 / `MIN_SUPPORT`: the candidate's choices are
  not independent of the logging policy's draws, as when it was trained on these very logs (its
  lists hold what the logging policy happened to serve each user); then no estimator here is
  unbiased.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from botify.catalog import Catalog
from script.ope import estimators, reward_model
from script.ope.estimators import Estimate
from script.ope.logged import LoggedSteps, OpeError, load
from script.ope.replay import Candidate, replay

MIN_MATCHED = 100
MIN_ESS = 100.0
MIN_SUPPORT = 0.9
ESTIMATORS = ("IPS", "SNIPS", "DM", "DR")


class NoSupport(OpeError):
    """The logs do not support an estimate of this candidate (`OpeResult.refusal`)."""


@dataclass(frozen=True)
class ArmSupport:
    """How well one logged arm's steps support the candidate."""

    steps: int
    matched: int
    mean_weight: float


@dataclass(frozen=True)
class OpeResult:
    candidate: str
    recommender: str
    steps: int  # estimable `next` steps (reward linked, propensity logged)
    matched: int  # of them, where the candidate's draw is the logged track
    ess: float
    mean_weight: Estimate
    logged: Estimate  # the logging policy's own mean reward per step (on-policy, no weights)
    estimates: dict[str, Estimate]  # IPS, SNIPS, DM, DR; empty when refused
    refusal: str | None
    reward_model: str = reward_model.DESCRIPTION
    skipped: dict[str, int] = field(default_factory=dict)  # next steps not estimated, and why
    by_arm: dict[str, ArmSupport] = field(default_factory=dict)

    def estimate(self, name: str) -> Estimate:
        """One estimator's estimate; raises NoSupport when the estimate was refused."""
        if self.refusal is not None:
            raise NoSupport(self.refusal)
        return self.estimates[name]

    def to_dict(self) -> dict:
        return asdict(self)

    def render(self) -> str:
        lines = [
            f"candidate {self.candidate} ({self.recommender}): {self.steps:,} logged steps, "
            f"{self.matched:,} matched, effective sample size {self.ess:,.1f}",
            f"mean weight {self.mean_weight.value:.3f} [{self.mean_weight.low:.3f}, "
            f"{self.mean_weight.high:.3f}] (1 when the logging policy can serve all the "
            "candidate serves)",
        ]
        if len(self.by_arm) > 1 or self.refusal:
            for arm, s in self.by_arm.items():
                lines.append(
                    f"  logged arm {arm}: {s.steps:,} steps, {s.matched:,} matched, "
                    f"mean weight {s.mean_weight:.3f}"
                )
        skipped = ", ".join(f"{v:,} {k}" for k, v in self.skipped.items() if v)
        if skipped:
            lines.append(f"next steps not used: {skipped}")
        lines.append(
            f"logged policy's own mean time per step: {self.logged.value:.4f} "
            f"[{self.logged.low:.4f}, {self.logged.high:.4f}]"
        )
        if self.refusal is not None:
            lines.append(f"NO ESTIMATE: {self.refusal}")
            return "\n".join(lines)
        lines.append("")
        lines.append(f"{'estimator':<10} {'mean time per step':>18}   {'95 % CI':<20}")
        for name in ESTIMATORS:
            e = self.estimates[name]
            lines.append(f"{name:<10} {e.value:>18.4f}   [{e.low:.4f}, {e.high:.4f}]")
        lines.append(f"DM's reward model: {self.reward_model}")
        return "\n".join(lines)


def evaluate(
    data: Path,
    candidate: Candidate,
    catalog: Catalog,
    *,
    experiment: str | None = None,
    arms: tuple[str, ...] = (),
    since_ms: int | None = None,
    until_ms: int | None = None,
    seed: int = 0,
    progress: bool = True,
    min_matched: int = MIN_MATCHED,
    min_ess: float = MIN_ESS,
    min_support: float = MIN_SUPPORT,
) -> OpeResult:
    """The candidate's off-policy estimates from the dataset `data` (see `load` for the
    selection). Raises OpeError when there is nothing to estimate from; a refusal for missing
    support comes back in the result (`refusal`, and `estimate()` raises NoSupport)."""
    logged = load(data, experiment, arms, since_ms, until_ms)
    return evaluate_logged(
        logged, candidate, catalog, seed=seed, progress=progress,
        min_matched=min_matched, min_ess=min_ess, min_support=min_support,
    )  # fmt: skip


def evaluate_logged(
    logged: LoggedSteps,
    candidate: Candidate,
    catalog: Catalog,
    *,
    seed: int = 0,
    progress: bool = True,
    min_matched: int = MIN_MATCHED,
    min_ess: float = MIN_ESS,
    min_support: float = MIN_SUPPORT,
) -> OpeResult:
    """`evaluate` on steps already loaded (several candidates on one load)."""
    if not logged.estimable.any():
        why = (
            "its events carry no propensity (logged before the field existed)"
            if logged.no_propensity
            else "no `next` step has a following listen"
        )
        raise OpeError(f"nothing to estimate from: {why}")
    actions = replay(candidate, catalog, logged.events, seed=seed, progress=progress)
    events = logged.events
    rows = np.flatnonzero(logged.estimable)
    user = events["user"].to_numpy()[rows]
    served = events["recommendation"].to_numpy(dtype=np.float64)[rows].astype(np.int64)
    propensity = events["propensity"].to_numpy(dtype=np.float64)[rows]
    reward = logged.reward[rows]
    drawn = actions[rows]
    weight = (drawn == served) / propensity

    q_log, q_cand = reward_model.cross_fitted(
        catalog,
        user,
        events["track"].to_numpy()[rows],
        events["time"].to_numpy(dtype=np.float64)[rows],
        served,
        reward,
        drawn,
    )
    mean_weight = estimators.mean_estimate("mean weight", weight, user)
    matched = int(np.count_nonzero(weight))
    ess = estimators.effective_sample_size(weight)
    arm = events["arm"].fillna("(no arm)").to_numpy()[rows]
    by_arm = {}
    for name in sorted({str(a) for a in arm}):
        mine = arm.astype(str) == name
        by_arm[name] = ArmSupport(
            int(mine.sum()), int(np.count_nonzero(weight[mine])), float(weight[mine].mean())
        )
    refusal = None
    if min_support > 0 and mean_weight.low > 1 / min_support:
        refusal = (
            f"the mean weight of {candidate.label} is {mean_weight.value:.3f} "
            f"[{mean_weight.low:.3f}, {mean_weight.high:.3f}], above 1 beyond chance: its "
            "choices depend on the logged draws themselves (was it trained on these logs?) or "
            "the logged propensities are wrong. Estimate it on logs it did not learn from."
        )
    else:
        failed = []
        if matched < min_matched:
            failed.append(
                f"only {matched:,} of {len(rows):,} steps matched (at least {min_matched})"
            )
        if ess < min_ess:
            failed.append(f"an effective sample size of {ess:,.1f} (at least {min_ess:g})")
        if mean_weight.high < min_support:
            failed.append(
                f"the logging policy could have served about {mean_weight.value:.1%} of the "
                f"candidate's choices (interval up to {mean_weight.high:.1%}; at least "
                f"{min_support:.0%})"
            )
        if failed:
            refusal = (
                f"the logs do not support {candidate.label}: " + "; ".join(failed) + ". Estimate "
                "it on logs of a policy that can serve what it serves (--arm)."
            )
    estimates = {}
    if refusal is None:
        estimates = {
            "IPS": estimators.ips(reward, weight, user),
            "SNIPS": estimators.snips(reward, weight, user),
            "DM": estimators.direct(q_cand, user),
            "DR": estimators.doubly_robust(reward, weight, q_log, q_cand, user),
        }
    return OpeResult(
        candidate=candidate.label,
        recommender=candidate.recommender,
        steps=len(rows),
        matched=matched,
        ess=ess,
        mean_weight=mean_weight,
        logged=estimators.mean_estimate("logged", reward, user),
        estimates=estimates,
        refusal=refusal,
        skipped={
            "without a following listen": logged.unlinked,
            "without a propensity": logged.no_propensity,
        },
        by_arm=by_arm,
    )
