"""The course's 2026 StickyArtist variants (anokhin/recsys-course-spring-2026,
botify/botify/recommenders/{sticky_artist,sticky_artist_mixed}.py), beside the 2025 one
(`sticky_artist`, which may serve the track just heard)."""

from __future__ import annotations

from botify.recommenders.base import Recommendation, Recommender, register, uniform_pick
from botify.step import Step


@register
class StickyArtist2026(Recommender):
    """A random track by the previous track's artist, never the previous track itself (unless
    it is the artist's only track, as in the course)."""

    name = "sticky_artist_2026"
    tells_chance = False  # its chance of a track it did not pick is not computed here

    def recommend(self, step: Step, results=()) -> Recommendation:
        return self.same_artist_other(step)

    def same_artist_other(self, step: Step) -> Recommendation:
        tracks = self.ctx.catalog.same_artist(step.track)
        others = tracks[tracks != step.track]
        return uniform_pick(others if len(others) else tracks, step)


@register
class StickyArtistMixed(StickyArtist2026):
    """StickyArtist 2026, but a uniformly random track after a play shorter than `threshold`
    (the course's 0.3): a listener who skipped is not kept on that artist."""

    name = "sticky_artist_mixed"

    def __init__(self, ctx, threshold: float = 0.3):
        super().__init__(ctx)
        self.threshold = float(threshold)

    def recommend(self, step: Step, results=()) -> Recommendation:
        if step.time < self.threshold:  # the branch is known from the step: no extra factor
            n = len(self.ctx.catalog)
            return Recommendation(step.randint(n), False, 1.0 / n)
        return self.same_artist_other(step)
