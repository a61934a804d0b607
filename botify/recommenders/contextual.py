"""The course's 2025 "contextual" recommender (anokhin/recsys-course-spring-2025,
botify/botify/recommenders/contextual.py): a random track of the previous track's item list.

The lists are what followed a track in the logs (`python -m trainer zoo contextual`: the week-6
seminar's model of the time heard after a session's first track), deployed as item-keyed lists
(`botify.item_lists`). A track without a list gets the fallback (the course's Random) and the
event says so.
"""

from __future__ import annotations

from botify.recommenders import base
from botify.recommenders.base import Context, Recommendation, Recommender, register
from botify.step import Step


@register
class Contextual(Recommender):
    name = "contextual"

    def __init__(self, ctx: Context, lists: str = "contextual", fallback: str = "random"):
        super().__init__(ctx)
        self.lists = base.list_set_name(self.name, lists)
        self.fallback = base.stateless_fallback(self.name, fallback, ctx)

    def list_sets(self) -> set[str]:
        return {self.lists}

    def needs_item_lists(self) -> bool:
        return True

    def _after(self, step: Step):
        source = self.ctx.item_lists
        lists = source.get(self.lists) if source is not None else None
        return lists.get(step.track) if lists is not None else None

    def recommend(self, step: Step, results=()) -> Recommendation:
        after = self._after(step)
        if after is None or not len(after):
            return base.fell_back(self.fallback, step)
        return base.uniform_pick(after, step)

    def chance(self, step: Step, results, own: Recommendation, track: int) -> float | None:
        if own.fallback:
            return super().chance(step, results, own, track)
        return base.share_of(self._after(step), track)
