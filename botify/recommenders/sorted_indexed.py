from __future__ import annotations

from collections.abc import Sequence

from botify.recommenders.base import Context, register
from botify.recommenders.indexed import ListRecommender
from botify.step import Step
from botify.user_state import NextInList, Op, ResetCursor


@register
class SortedIndexed(ListRecommender):
    """The user's top-K list in ranked order (the seed's MyOwnIndexed), by the seed's rule: if the
    previous track is in the list, the one after it (wrapping at the end), otherwise the list's
    first track. So a session starts at the top and walks down the list, and a track the session
    just heard is never served again right away (`botify.user_state.NextInList`).
    """

    name = "sorted_indexed"

    def __init__(self, ctx: Context, lists: str = "core", fallback: str = "sticky_artist"):
        super().__init__(ctx, lists=lists, fallback=fallback)
        self.scope = f"{self.name}:{lists}"

    def restart_past(self, prev_track_time: float) -> int:
        """Restart at the top when the previous track's position is past this (-1: never)."""
        return -1

    def ops(self, step: Step) -> Sequence[Op]:
        return (
            NextInList(self.lists, self.scope, step.user, step.track, self.restart_past(step.time)),
        )

    def end_ops(self, step: Step) -> Sequence[Op]:
        return (ResetCursor(self.scope, step.user),)
