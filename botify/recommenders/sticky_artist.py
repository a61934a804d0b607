from botify.recommenders.base import Recommendation, Recommender, register, share_of, uniform_pick
from botify.step import Step


@register
class StickyArtist(Recommender):
    """A random track by the previous track's artist (the course's StickyArtist)."""

    name = "sticky_artist"

    def recommend(self, step: Step, results=()) -> Recommendation:
        return uniform_pick(self.ctx.catalog.same_artist(step.track), step)

    def chance(self, step: Step, results, own: Recommendation, track: int) -> float:
        return share_of(self.ctx.catalog.same_artist(step.track), track)
