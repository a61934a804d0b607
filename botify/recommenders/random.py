from botify.recommenders.base import Recommendation, Recommender, register
from botify.step import Step


@register
class Random(Recommender):
    """A uniformly random track from the catalog."""

    name = "random"

    def recommend(self, step: Step, results=()) -> Recommendation:
        n = len(self.ctx.catalog)
        return Recommendation(step.randint(n), False, 1.0 / n)

    def chance(self, step: Step, results, own: Recommendation, track: int) -> float:
        return 1.0 / len(self.ctx.catalog)
