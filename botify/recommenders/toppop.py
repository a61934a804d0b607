from botify.recommenders.base import (
    Context,
    Recommendation,
    Recommender,
    register,
    share_of,
    uniform_pick,
)
from botify.step import Step


@register
class TopPop(Recommender):
    """A random track among the `k` most popular (the course's TopPop shuffles its top list)."""

    name = "toppop"

    def __init__(self, ctx: Context, k: int = 100):
        super().__init__(ctx)
        self.top = ctx.catalog.toppop[: max(1, int(k))]

    def recommend(self, step: Step, results=()) -> Recommendation:
        return uniform_pick(self.top, step)

    def chance(self, step: Step, results, own: Recommendation, track: int) -> float:
        return share_of(self.top, track)
