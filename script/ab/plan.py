"""`python -m script.ab plan`: how many users (and sessions) an experiment needs, from a pilot.

The pilot is one group of users' metric: a logged dataset (the control arm of an experiment, or
every user) or the simulator (a recommender run in-process on the world, `pilot_from_simulator`).
Its mean and standard deviation give the metric's coefficient of variation; with CUPED, the
pilot's correlation with the same users' pre-period metric shrinks the standard deviation by
``sqrt(1 - corr**2)``, the share CUPED removes. `script.ab.power` turns that into users per arm
for a relative MDE (or the MDE of a given size); sessions follow from the pilot's sessions per user.

A pilot A/B (``--treatment ARM``: a treatment arm of the same experiment) also measures how much
the treatment's variance differs from the control's (R in `script.ab.power`); without one the
plan assumes equal variances, as gbstats' calculator does, and says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from measure.metrics import METRICS, user_metrics
from script.ab import power as pw
from script.ab.errors import ReportError
from script.ab.metrics import activity_metrics, load_events


@dataclass(frozen=True)
class Pilot:
    source: str
    metric: str
    users: int
    sessions: int
    mean: float
    sd: float
    correlation: float | None = None  # with the pre-period (CUPED); None without one
    users_with_pre: int | None = None
    treatment: Pilot | None = None  # a pilot A/B's treatment arm: its variance

    @property
    def sessions_per_user(self) -> float:
        return self.sessions / self.users if self.users else math.nan

    def adjusted_sd(self, cuped: bool = False) -> float:
        """The sd, of the CUPED-adjusted metric when asked (and a pre-period exists)."""
        if not cuped:
            return self.sd
        if self.correlation is None:
            raise ReportError("CUPED planning needs a pilot with a pre-period")
        return self.sd * math.sqrt(max(1 - self.correlation**2, 0.0))

    def cv(self, cuped: bool = False) -> float:
        """sd / mean, of the CUPED-adjusted metric when asked (and a pre-period exists)."""
        return self.adjusted_sd(cuped) / abs(self.mean)

    def variance_ratio(self, cuped: bool = False) -> float:
        """The treatment's variance over the control's: measured by a pilot A/B, else 1."""
        if self.treatment is None:
            return 1.0
        return (self.treatment.adjusted_sd(cuped) / self.adjusted_sd(cuped)) ** 2


def pilot_from_metrics(
    metrics: pd.DataFrame,
    metric: str,
    source: str,
    pre: pd.DataFrame | None = None,
    treatment: pd.DataFrame | None = None,
) -> Pilot:
    """A pilot from user metrics (one row per user); ``pre`` (the same users' pre-period
    metrics) adds the correlation CUPED exploits, a user without pre-period data counted 0;
    ``treatment`` (a pilot A/B's treatment users) adds the treatment's variance."""
    if metric not in metrics:
        raise ReportError(f"unknown metric {metric!r}; one of {', '.join(METRICS)}")
    values = metrics[metric].to_numpy(float)
    if len(values) < 2:
        raise ReportError(f"the pilot has {len(values)} user(s) with a finished session: too few")
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    if mean == 0 or sd == 0 or not (math.isfinite(mean) and math.isfinite(sd)):
        raise ReportError(f"the pilot's {metric} has mean {mean} and sd {sd}: cannot plan")
    correlation, with_pre = None, None
    if pre is not None:
        joined = metrics[["user", metric]].merge(
            pre[["user", metric]], on="user", how="left", suffixes=("", "_pre")
        )
        covariate = joined[f"{metric}_pre"].fillna(0.0).to_numpy(float)
        with_pre = int(joined[f"{metric}_pre"].notna().sum())
        if covariate.std() > 0:
            correlation = float(np.corrcoef(joined[metric].to_numpy(float), covariate)[0, 1])
        else:
            correlation = 0.0
    sessions = int(metrics["sessions"].sum()) if "sessions" in metrics else len(values)
    treated = None
    if treatment is not None:
        treated = pilot_from_metrics(treatment, metric, f"{source}, treatment", pre)
    return Pilot(source, metric, len(values), sessions, mean, sd, correlation, with_pre, treated)


def pilot_from_data(
    data: Path,
    metric: str,
    experiment: str | None = None,
    arm: str = "C",
    since_ms: int | None = None,
    until_ms: int | None = None,
    cuped: bool = False,
    treatment: str | None = None,
) -> Pilot:
    """The pilot from a logged dataset: ``arm`` of ``experiment`` (or every user without one),
    and with ``treatment`` that arm too (a pilot A/B); with ``cuped``, the events before
    ``since_ms`` are the pre-period."""
    treated = None
    if experiment is not None:
        metrics = user_metrics(load_events(data, experiment, since_ms, until_ms))
        if treatment is not None:
            treated = metrics[metrics["arm"] == treatment]
            if treated.empty:
                raise ReportError(f"no finished session of arm {treatment!r} in {experiment!r}")
        metrics = metrics[metrics["arm"] == arm]
        if metrics.empty:
            raise ReportError(f"no finished session of arm {arm!r} in experiment {experiment!r}")
        versus = f" against {treatment}" if treatment else ""
        source = f"{data} (experiment {experiment}, arm {arm}{versus})"
    elif treatment is not None:
        raise ReportError("a pilot A/B (--treatment) needs --experiment")
    else:
        metrics = activity_metrics(data, until_ms, since_ms)
        source = f"{data} (every user)"
    pre = None
    if cuped:
        if since_ms is None:
            raise ReportError(
                "CUPED planning needs --since: the events before it are the pre-period"
            )
        pre = activity_metrics(data, since_ms)
        if pre.empty:
            raise ReportError("CUPED planning: no finished session before --since")
    return pilot_from_metrics(metrics, metric, source, pre, treated)


def pilot_from_simulator(
    world: Path,
    metric: str,
    sessions: int,
    recommender: str = "sticky_artist",
    seed: int = 0,
    pre_sessions: int = 0,
) -> Pilot:
    """The pilot from the simulator: ``sessions`` sessions of the world's users served
    in-process by ``recommender`` (catalog-only); ``pre_sessions`` more, earlier, under the
    same recommender make the pre-period (as the demo's day 1)."""
    from measure.metrics import users_from_sessions
    from sim.batch import BatchSimulator, run_key
    from sim.transport import InProcess, ServicePolicy
    from sim.user_model import Population
    from sim.world import World

    loaded = World.load(world)
    population = Population(loaded)

    def run(key: int, n: int) -> pd.DataFrame:
        policy = ServicePolicy(InProcess.build(loaded.catalog, recommender))
        result = BatchSimulator(population, run_key(seed, key)).run(policy, n)
        # as the service logs a session: the first track (time 1.0) is an event too
        return users_from_sessions(result.user, result.time + 1.0, result.tracks + 1)

    metrics = run(2, sessions)
    pre = run(1, pre_sessions) if pre_sessions else None
    source = f"simulator: {sessions:,} sessions of {recommender} on {world}"
    return pilot_from_metrics(metrics, metric, source, pre)


@dataclass(frozen=True)
class Plan:
    pilot: Pilot
    alpha: float
    power: float
    arms: int
    cuped: bool
    sequential: bool
    tuning: float
    mde: float  # relative, a fraction
    users_per_arm: int
    variance_ratio: float = 1.0  # the treatment's variance over the control's assumed

    @property
    def comparisons(self) -> int:
        return max(self.arms - 1, 1)

    @property
    def users(self) -> int:
        return self.users_per_arm * self.arms

    @property
    def sessions(self) -> int:
        return math.ceil(self.users * self.pilot.sessions_per_user)

    def lines(self) -> list[str]:
        p = self.pilot
        pre = ""
        if self.cuped:
            pre = (
                f"; CUPED: correlation {p.correlation:.3f} with the pre-period "
                f"({p.users_with_pre:,} of {p.users:,} users had one) -> sd x "
                f"{math.sqrt(max(1 - (p.correlation or 0) ** 2, 0)):.3f}"
            )
        horizon = (
            f"always-valid (sequential, N* = {self.tuning:g}; power at the last look)"
            if self.sequential
            else "fixed horizon (one look)"
        )
        spread = (
            f"the treatment's variance {self.variance_ratio:.2f} x the control's (pilot A/B)"
            if p.treatment is not None
            else f"the treatment's variance assumed {self.variance_ratio:g} x the control's"
            + (" (equal, as gbstats' calculator; a pilot A/B measures it: --treatment)"
               if self.variance_ratio == 1 else "")
        )  # fmt: skip
        return [
            f"pilot: {p.source}",
            f"  {p.users:,} users, {p.sessions:,} sessions; {p.metric}: mean {p.mean:.4g}, "
            f"sd {p.sd:.4g} (cv {p.cv():.3f}){pre}",
            f"plan: a change of {100 * self.mde:.2f} % in {p.metric}, detected with "
            f"{self.power:.0%} power at alpha {self.alpha} (two-sided; {self.comparisons} "
            f"comparison(s) against control, Bonferroni), {horizon}; {spread}",
            f"  users per arm: {self.users_per_arm:,}",
            f"  users in all {self.arms} arms: {self.users:,}",
            f"  sessions: {self.sessions:,} ({p.sessions_per_user:.2f} per user in the pilot)",
        ]


def plan(
    pilot: Pilot,
    mde: float | None = None,
    users_per_arm: int | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    arms: int = 2,
    cuped: bool = False,
    sequential: bool = False,
    tuning: float = 5000,
    variance_ratio: float | None = None,
) -> Plan:
    """Users per arm for a relative ``mde`` (a fraction), or the MDE of ``users_per_arm``.
    ``variance_ratio`` (treatment over control) defaults to the pilot A/B's, else 1."""
    if (mde is None) == (users_per_arm is None):
        raise ValueError("give the effect to detect or the users per arm, not both")
    if arms < 2:
        raise ValueError("an experiment has at least 2 arms")
    cv = pilot.cv(cuped)
    ratio = pilot.variance_ratio(cuped) if variance_ratio is None else variance_ratio
    level = alpha / (arms - 1)
    if mde is not None:
        users_per_arm = pw.users_per_arm(cv, mde, level, power, 1, sequential, tuning, ratio)
    else:
        assert users_per_arm is not None
        found = pw.minimum_detectable_effect(
            cv, users_per_arm, users_per_arm, level, power, sequential, tuning, ratio
        )
        if found is None:
            raise ReportError(f"{users_per_arm} users per arm detect no effect of {pilot.metric}")
        mde = found
    return Plan(pilot, alpha, power, arms, cuped, sequential, tuning, mde, users_per_arm, ratio)
