from botify.recommenders.base import Recommendation, Recommender, register
from botify.step import Step


@register
class StickyArtist(Recommender):
    """A random track by the previous track's artist (the course's StickyArtist)."""

    name = "sticky_artist"

    def recommend(self, step: Step, results=()) -> Recommendation:
        tracks = self.ctx.catalog.same_artist(step.track)
        return Recommendation(int(tracks[step.randint(len(tracks))]))
