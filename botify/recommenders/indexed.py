from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botify.recommenders import base
from botify.recommenders.base import Context, Recommendation, Recommender, register
from botify.step import Step
from botify.user_state import Failed, Op, Picked, PickInList


class ListRecommender(Recommender):
    """Base of the recommenders that serve a user's top-K list (list set `lists`, e.g. `core`).

    Subclasses name one op whose result is the track to serve (or a `Picked`, the track with the
    chance it had), or None when the user has no list (or an empty one): then the `fallback`
    recommender answers and the Recommendation says so, with the fallback's propensity.
    """

    uses_state = True

    def __init__(self, ctx: Context, lists: str = "core", fallback: str = "sticky_artist"):
        super().__init__(ctx)
        self.lists = base.list_set_name(self.name, lists)
        self.fallback = base.stateless_fallback(self.name, fallback, ctx)

    def list_sets(self) -> set[str]:
        return {self.lists}

    def recommend(self, step: Step, results: Sequence[Any] = ()) -> Recommendation:
        track = results[0] if results else None
        if track is None or isinstance(track, Failed):
            return base.fell_back(self.fallback, step)
        if isinstance(track, Picked):  # a draw from the list: the share of it that is this track
            return Recommendation(track.track, False, track.copies / track.size)
        return Recommendation(int(track))  # the list rule is deterministic given the state


@register
class Indexed(ListRecommender):
    """A random track from the user's top-K list (the course's Indexed)."""

    name = "indexed"
    tells_chance = False  # its op reads one drawn entry of the list, not the whole list ...

    def __init__(
        self,
        ctx: Context,
        lists: str = "core",
        fallback: str = "sticky_artist",
        whole_list: bool = False,
    ):
        super().__init__(ctx, lists=lists, fallback=fallback)
        # ... unless asked to read the whole list (a side of an exploration arm): the same draw,
        # and the list to tell its chance of any track
        self.whole_list = bool(whole_list)
        self.tells_chance = self.whole_list  # type: ignore[misc]

    def ops(self, step: Step) -> Sequence[Op]:
        return (PickInList(self.lists, step.user, step.draw53(), self.whole_list),)

    def chance(
        self, step: Step, results: Sequence[Any], own: Recommendation, track: int
    ) -> float | None:
        picked = results[0] if results else None
        if not own.fallback and isinstance(picked, Picked) and picked.tracks is not None:
            return base.share_of(picked.tracks, track)
        return super().chance(step, results, own, track)
