from __future__ import annotations

import numpy as np

from botify.recommenders import base
from botify.recommenders.base import Context, Recommendation, Recommender, register


class ListRecommender(Recommender):
    """Base of the recommenders that serve a user's top-K list (list set `lists`, e.g. `core`).

    A user without a list (or with an empty one) gets the `fallback` recommender's answer, and
    the Recommendation says so.
    """

    uses_store = True

    def __init__(self, ctx: Context, lists: str = "core", fallback: str = "sticky_artist"):
        super().__init__(ctx)
        if lists not in ctx.lists:
            raise KeyError(f"{self.name}: list set {lists!r} is not in the context")
        if fallback not in base.REGISTRY:
            from botify.recommenders import get  # loads every module, then looks up

            get(fallback)
        self.lists_name = lists
        self.source = ctx.lists[lists]
        self.fallback = base.REGISTRY[fallback](ctx)

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        return self.recommend(user, prev_track, prev_track_time).track

    def recommend(self, user: int, prev_track: int, prev_track_time: float) -> Recommendation:
        tracks = self.source.get(user)
        if tracks is None or len(tracks) == 0:
            return Recommendation(
                self.fallback.recommend_next(user, prev_track, prev_track_time), True
            )
        return Recommendation(int(self.pick(user, tracks, prev_track_time)))

    def pick(self, user: int, tracks: np.ndarray, prev_track_time: float) -> int:
        raise NotImplementedError


@register
class Indexed(ListRecommender):
    """A random track from the user's top-K list (the course's Indexed)."""

    name = "indexed"

    def pick(self, user: int, tracks: np.ndarray, prev_track_time: float) -> int:
        return tracks[self.ctx.rng.integers(len(tracks))]
