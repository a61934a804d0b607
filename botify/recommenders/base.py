"""The recommender interface shared by the service and the simulator's in-process baselines.

A recommender answers "what next for `user`, who just heard `prev_track` for `prev_time`?".
Everything it needs arrives through a `Context` (catalog, random generator, per-user state
stores), so the same class runs inside a gunicorn worker (Redis-backed stores) and inside the
simulator (in-memory stores) without a second implementation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, Protocol

import numpy as np

from botify.catalog import Catalog


class ListSource(Protocol):
    """Per-user top-K lists (e.g. `botify.toplists.TopLists`). None when the user has none."""

    def get(self, user: int) -> np.ndarray | None: ...


@dataclass
class Context:
    catalog: Catalog
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    lists: dict[str, ListSource] = field(default_factory=dict)  # list-set name -> source
    cursors: Any = None  # per-user cursor store (Redis in the service, a dict in the simulator)


class Recommendation(NamedTuple):
    track: int
    fallback: bool = False  # True when the recommender had to answer without its own data


class Recommender(ABC):
    name: ClassVar[str]
    uses_store: ClassVar[bool] = False  # reads Redis (lists, cursors): skipped while Redis fails

    def __init__(self, ctx: Context, **params):
        self.ctx = ctx
        if params:
            raise TypeError(f"{self.name}: unknown parameters {sorted(params)}")

    @abstractmethod
    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int: ...

    def recommend(self, user: int, prev_track: int, prev_track_time: float) -> Recommendation:
        """`recommend_next` plus whether it fell back (the service logs that)."""
        return Recommendation(self.recommend_next(user, prev_track, prev_track_time))

    def on_session_end(self, user: int) -> None:  # noqa: B027 - optional hook
        """Called on /last; stateful recommenders forget the session here."""


REGISTRY: dict[str, type[Recommender]] = {}


def register(cls: type[Recommender]) -> type[Recommender]:
    REGISTRY[cls.name] = cls
    return cls
