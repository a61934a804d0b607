"""The recommender interface shared by the service and the simulator's in-process runs.

A recommender answers "what next for this step?" (`botify.step.Step`: the user, the track just
heard and how much of it). A catalog-only recommender implements `recommend_next`; one that needs
per-user state (lists, cursors, the live session) names it as ops (`botify.user_state`) in `ops`, and
gets their results in `recommend`. The service runs the ops of all steps of a request in one
Redis round trip; the simulator runs the very same class against in-memory state. Everything else
a recommender needs arrives through its `Context`: the catalog, the step's random generator, the
online models and the item-keyed lists of the live list-set versions.
"""

from __future__ import annotations

import threading
from abc import ABC
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np

from botify.catalog import Catalog
from botify.event_schema import Team
from botify.step import Step
from botify.toplists import check_list_set_name
from botify.user_state import Op


class StepRandom:
    """`ctx.rng`: the numpy Generator of the step being served (seeded by the step's seed), so a
    recommender that draws from `self.ctx.rng` gets replayable answers. Thread-safe: each serving
    thread sees its own step."""

    def __init__(self) -> None:
        self._local = threading.local()

    def serve(self, step: Step | None) -> None:
        self._local.step = step

    def __getattr__(self, name: str) -> Any:
        step = getattr(self._local, "step", None)
        if step is None:
            raise RuntimeError("ctx.rng is only available while a step is being served")
        return getattr(step.rng, name)


@dataclass
class Context:
    catalog: Catalog
    rng: StepRandom = field(default_factory=StepRandom)
    models: Any = None  # online models by list set (botify.online_model.ModelSource)
    item_lists: Any = None  # item-keyed lists by list set (botify.item_lists.ItemListSource)


class Recommendation(NamedTuple):
    """A served track, whether the fallback chose it, and the probability with which it was chosen
    given what the recommender knew (the step, its state, its lists): the logging propensity that
    off-policy estimates divide by (`script.ope`). A deterministic choice is 1.0; a stochastic
    recommender must say its probability (tests/botify/test_propensity.py checks every registered
    one against the frequencies of its own draws)."""

    track: int
    fallback: bool = False  # True when the recommender had to answer without its own data
    propensity: float = 1.0  # P(this track | what the recommender knew), in (0, 1]
    team: Team | None = None  # an interleaving arm: the side that picked it ("a", "b", "both")


class Recommender(ABC):  # noqa: B024 - either recommend_next or ops + recommend is overridden
    name: ClassVar[str]
    uses_state: ClassVar[bool] = False  # names ops: skipped for the fallback while Redis fails
    # False where `chance` cannot tell the probability of a track the recommender did not pick
    # (it would need state its ops did not read): an exploration arm refuses such a side
    tells_chance: ClassVar[bool] = True

    def __init__(self, ctx: Context, **params):
        self.ctx = ctx
        if params:
            raise TypeError(f"{self.name}: unknown parameters {sorted(params)}")

    # -- what a deterministic catalog-only recommender may implement (propensity 1) ---------------
    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        raise NotImplementedError(
            f"{type(self).__name__} implements neither recommend_next nor recommend"
        )

    # -- the general form (the service calls these) ----------------------------------------------
    def chance(
        self, step: Step, results: Sequence[Any], own: Recommendation, track: int
    ) -> float | None:
        """P(this recommender serves `track` at this step), given its ops' `results` and its own
        answer `own` (from `recommend(step, results)`): what an arm mixing several recommenders
        logs as its propensity (`botify.recommenders.mixture`). This default knows two cases: an
        answer from the fallback (the fallback's chance) and a deterministic answer (propensity 1:
        1 for its track, 0 for any other). A stochastic recommender overrides it; None: unknown.
        """
        fallback = getattr(self, "fallback", None)  # the list arms' and model arms' fallback
        if own.fallback and isinstance(fallback, Recommender):
            return fallback.chance(step, (), own._replace(fallback=False), track)
        if own.propensity >= 1.0:
            return float(track == own.track)
        return None

    def ops(self, step: Step) -> Sequence[Op]:
        """State to read or move for a /next step, run before `recommend` (one round trip)."""
        return ()

    def end_ops(self, step: Step) -> Sequence[Op]:
        """State to clear when the session ends (/last)."""
        return ()

    def recommend(self, step: Step, results: Sequence[Any] = ()) -> Recommendation:
        """The answer to a /next step; `results` are those of `ops(step)`, in order."""
        return Recommendation(int(self.recommend_next(step.user, step.track, step.time)))

    def on_session_end(self, user: int) -> None:  # noqa: B027 - optional hook
        """Called on /last (after `end_ops` ran); in-process state is forgotten here."""

    def list_sets(self) -> set[str]:
        """Names of the list sets this recommender serves from (readiness checks they are live)."""
        return set()

    def needs_model(self) -> bool:
        """True when it serves from its list sets' online model (readiness checks it loads)."""
        return False

    def needs_item_lists(self) -> bool:
        """True when it serves from its list sets' item-keyed lists (readiness checks they load)."""
        return False


def fell_back(fallback: Recommender, step: Step) -> Recommendation:
    """`fallback`'s answer to the step, flagged as a fallback, with the fallback's propensity."""
    answer = fallback.recommend(step)
    return Recommendation(answer.track, True, answer.propensity)


def share_of(pool: np.ndarray, track: int) -> float:
    """The share of `pool` that is `track`: a uniform pick's chance of it (0 for an empty pool)."""
    pool = np.asarray(pool)
    return int(np.count_nonzero(pool == track)) / len(pool) if len(pool) else 0.0


def uniform_pick(pool: np.ndarray, step: Step) -> Recommendation:
    """A uniformly random entry of `pool` by the step's stream; its propensity is the share of
    the pool that is this track (1 / len(pool) when the pool holds it once)."""
    pool = np.asarray(pool)
    track = int(pool[step.randint(len(pool))])
    return Recommendation(track, False, share_of(pool, track))


def list_set_name(owner: str, lists: str) -> str:
    """`lists` when it is a good list set name (`botify.toplists.check_list_set_name`)."""
    try:
        return check_list_set_name(lists)
    except ValueError as error:
        raise ValueError(f"{owner}: {error}") from None


def stateless_fallback(owner: str, fallback: str, ctx: Context) -> Recommender:
    """The recommender `owner` answers with when it has no data: it must need no per-user state,
    since it also answers while Redis fails."""
    if fallback not in REGISTRY:
        from botify.recommenders import get  # loads every module, then looks up

        get(fallback)
    recommender = REGISTRY[fallback](ctx)
    if recommender.uses_state:
        raise ValueError(f"{owner}: fallback {fallback!r} must not need per-user state")
    return recommender


REGISTRY: dict[str, type[Recommender]] = {}


def register(cls: type[Recommender]) -> type[Recommender]:
    REGISTRY[cls.name] = cls
    return cls
