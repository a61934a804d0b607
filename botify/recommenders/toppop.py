from botify.recommenders.base import Context, Recommender, register


@register
class TopPop(Recommender):
    """A random track among the `k` most popular (the course's TopPop shuffles its top list)."""

    name = "toppop"

    def __init__(self, ctx: Context, k: int = 100):
        super().__init__(ctx)
        self.top = ctx.catalog.toppop[: max(1, int(k))]

    def recommend_next(self, user: int, prev_track: int, prev_track_time: float) -> int:
        return int(self.top[self.ctx.rng.integers(len(self.top))])
