from botify.recommenders.base import Recommender, register


@register
class StickyArtist(Recommender):
    """A random track by the previous track's artist (the course's StickyArtist)."""

    name = "sticky_artist"

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        tracks = self.ctx.catalog.same_artist(prev_track)
        return int(tracks[self.ctx.rng.integers(len(tracks))])
