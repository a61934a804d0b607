from botify.recommenders.base import Recommender, register


@register
class Random(Recommender):
    """A uniformly random track from the catalog."""

    name = "random"

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        return int(self.ctx.rng.integers(len(self.ctx.catalog)))
