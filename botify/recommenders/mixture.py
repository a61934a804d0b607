"""An exploration arm for off-policy estimates: at each step a seeded coin picks which of its
recommenders serves, and the event logs the served track's exact marginal chance.

Off-policy estimates (`script.ope`) need logs whose policy could have served what a candidate
serves. A recommender's own logs cover only its own choices; this arm's cover every side's. All
sides answer every step (their ops in the service's one round trip, `botify.recommenders.sides`),
the coin (the step's own stream, `weights` normalised) picks one side's track, and the propensity
is sum_k weight_k * P_k(track), each side's chance from its `chance` (its answer's own
propensity when it picked the track, its chance of another side's pick otherwise). A side that
cannot tell that chance (`tells_chance` False: i2i, sticky_artist_2026; Indexed unless it reads
its whole list, `whole_list: true`, which an Indexed side gets here by itself) is refused, since
its term would be unknown and the logged propensity wrong.

`fallback` is true when any side answered from its fallback (the policy that logged is then
not the mixture meant; the propensity stays exact, a fallback telling its own chance). Params: `sides`, a list of mappings with each
recommender's `name` and params (default: the demo's C and T1); `weights`, one positive number
per side (default equal). `config/experiments-explore.yml` logs a day under the demo's arms that
can be sides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from botify import recommenders
from botify.recommenders.base import Context, Recommendation, Recommender, register
from botify.recommenders.sides import answers, build_side, plan
from botify.step import Step
from botify.user_state import Op


def can_be_side(name: str) -> bool:
    """Whether recommender `name` can be a side (it tells its chance, or reads enough to)."""
    return name == "indexed" or recommenders.get(name).tells_chance


def _telling(spec: Any) -> Any:
    """An Indexed side reads its whole list, so that it can tell its chance of any track."""
    if isinstance(spec, Mapping) and spec.get("name") == "indexed":
        return {**spec, "whole_list": True}
    return spec


DEFAULT_SIDES = ({"name": "sticky_artist"}, {"name": "sorted_indexed", "lists": "core"})  # C, T1


@register
class Mixture(Recommender):
    """One side's track per step, by a weighted coin; the exact marginal propensity logged."""

    name = "mixture"
    tells_chance = False  # an arm of several recommenders is never a side itself

    def __init__(
        self,
        ctx: Context,
        sides: Sequence[Mapping[str, Any]] = DEFAULT_SIDES,
        weights: Sequence[float] | None = None,
    ):
        super().__init__(ctx)
        if isinstance(sides, (str, bytes, Mapping)) or len(sides) < 2:
            raise ValueError(f"{self.name}: sides must be a list of at least two recommenders")
        self.sides = tuple(
            build_side(self.name, f"side {i}", _telling(spec), ctx) for i, spec in enumerate(sides)
        )
        for side in self.sides:
            if not side.tells_chance:
                raise ValueError(
                    f"{self.name}: {side.name} cannot tell its chance of another side's track, "
                    "so the logged propensity would be wrong; leave it out"
                )
        w = np.ones(len(self.sides)) if weights is None else np.asarray(weights, dtype=float)
        if w.shape != (len(self.sides),) or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError(f"{self.name}: weights must be one positive number per side")
        self.weights = w / w.sum()
        self.bounds = np.cumsum(self.weights)[:-1]  # the coin's cut points in [0, 1)
        self.uses_state = any(side.uses_state for side in self.sides)  # type: ignore[misc]

    def ops(self, step: Step) -> Sequence[Op]:
        return plan(self.sides, step, end=False)[0]

    def end_ops(self, step: Step) -> Sequence[Op]:
        return plan(self.sides, step, end=True)[0]

    def recommend(self, step: Step, results: Sequence[Any] = ()) -> Recommendation:
        sides = answers(self.sides, self.ctx, step, results)
        coin = step.draw53() / float(1 << 53)
        served = sides[int(np.searchsorted(self.bounds, coin, side="right"))][2]
        propensity = 0.0
        for recommender, weight, (sub, mine, pick) in zip(
            self.sides, self.weights, sides, strict=True
        ):
            chance = recommender.chance(sub, mine, pick, served.track)
            if chance is None:  # a side whose `chance` does not know its answer's kind
                chance = pick.propensity if pick.track == served.track else 0.0
            propensity += weight * chance
        # any side on its fallback: the logging policy is not the one the arm was meant to be
        fallback = any(pick.fallback for _, _, pick in sides)
        return Recommendation(served.track, fallback, min(propensity, 1.0))

    def on_session_end(self, user: int) -> None:
        for side in self.sides:
            side.on_session_end(user)

    def list_sets(self) -> set[str]:
        return set().union(*(side.list_sets() for side in self.sides))

    def needs_model(self) -> bool:
        return any(side.needs_model() for side in self.sides)

    def needs_item_lists(self) -> bool:
        return any(side.needs_item_lists() for side in self.sides)
