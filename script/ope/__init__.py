"""Off-policy estimates of a candidate recommender from the service's logs, before any A/B.

    python -m script.ope --data DATASET --candidate NAME [--config experiments.yml] [--run RUN]
                         [--experiment AB --arm C ...] [--since MS --until MS] [--seed N]

The logs carry, for every `next` step, the probability with which the serving arm chose the
served track (`propensity`, `botify.event_schema`); the reward of a step is the listening time of
that track (`script.ope.logged`). The candidate, any registered recommender with its params (an
arm of an experiments config) and its lists or model (a trained run folder), is replayed on the
logged contexts in-process through the service's own classes, each user's events in order, and
draws its action with a fresh seed per step (`script.ope.replay`). Then, per step,
w = 1[candidate's draw = logged track] / propensity, and IPS, SNIPS, the direct method and
doubly robust estimate the candidate's mean listening time per step, each with a 95 % interval
clustered by user (`script.ope.estimators`: OBP's formulas; the tests check them against OBP).
Sampling the candidate's action keeps each estimator's expectation that of OBP's formula with the
candidate's full action distribution, for stochastic and deterministic candidates alike.

Where the logging policy does not serve what the candidate serves, no estimate is given
(`script.ope.evaluate`: matched steps, effective sample size, mean weight).

The library function for other tools (the offline-online bench): `evaluate(data, candidate,
catalog, ...) -> OpeResult` (or `evaluate_logged` on steps loaded once with `load`).
"""

from script.ope.estimators import Estimate
from script.ope.evaluate import (
    MIN_ESS,
    MIN_MATCHED,
    MIN_SUPPORT,
    ArmSupport,
    NoSupport,
    OpeResult,
    evaluate,
    evaluate_logged,
)
from script.ope.logged import LoggedSteps, OpeError, load
from script.ope.replay import Candidate

__all__ = [
    "MIN_ESS",
    "MIN_MATCHED",
    "MIN_SUPPORT",
    "ArmSupport",
    "Candidate",
    "Estimate",
    "LoggedSteps",
    "NoSupport",
    "OpeError",
    "OpeResult",
    "evaluate",
    "evaluate_logged",
    "load",
]
