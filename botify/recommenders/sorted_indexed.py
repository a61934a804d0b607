from __future__ import annotations

import numpy as np

from botify.recommenders.base import Context, Recommendation, register
from botify.recommenders.indexed import ListRecommender
from botify.store import MemoryCursors, RedisCursors


@register
class SortedIndexed(ListRecommender):
    """The user's top-K list in ranked order (the seed's MyOwnIndexed).

    A per-user cursor (atomic in Redis, shared by every replica) walks the list: a session starts
    at the top (the cursor is reset on /last), each /next hands out the next position, and the
    end of the list wraps to the top.
    """

    name = "sorted_indexed"

    def __init__(self, ctx: Context, lists: str = "core", fallback: str = "sticky_artist"):
        super().__init__(ctx, lists=lists, fallback=fallback)
        self.cursors = ctx.cursors if ctx.cursors is not None else MemoryCursors()
        self.scope = f"{self.name}:{lists}"

    def restart_past(self, prev_track_time: float) -> int | None:
        """Restart at the top when the last position handed out is past this (None: never)."""
        return None

    def recommend(self, user: int, prev_track: int, prev_track_time: float) -> Recommendation:
        key_for = getattr(self.source, "key_for", None)
        if not (isinstance(self.cursors, RedisCursors) and key_for is not None):
            return super().recommend(user, prev_track, prev_track_time)
        # Lists and cursors both in Redis: read the list and move the cursor in one call.
        key = key_for(user)
        restart = self.restart_past(prev_track_time)
        track = (
            None if key is None else self.cursors.advance_in_list(self.scope, user, key, restart)
        )
        if track is None:
            return Recommendation(
                self.fallback.recommend_next(user, prev_track, prev_track_time), True
            )
        return Recommendation(track)

    def pick(self, user: int, tracks: np.ndarray, prev_track_time: float) -> int:
        position = self.cursors.advance(
            self.scope, user, len(tracks), self.restart_past(prev_track_time)
        )
        return tracks[position]

    def on_session_end(self, user: int) -> None:
        self.cursors.reset(self.scope, user)
