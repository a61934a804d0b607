from __future__ import annotations

from botify.recommenders.base import Context, register
from botify.recommenders.sorted_indexed import SortedIndexed


@register
class CoolerIndexed(SortedIndexed):
    """SortedIndexed that goes back to the top after a skip deep in the list (the seed's
    MyOwnCoolerIndexed): previous `time < skip_time` and previous position > `deep_position`."""

    name = "cooler_indexed"

    def __init__(
        self,
        ctx: Context,
        lists: str = "core",
        fallback: str = "sticky_artist",
        skip_time: float = 0.1,
        deep_position: int = 50,
    ):
        super().__init__(ctx, lists=lists, fallback=fallback)
        self.skip_time = float(skip_time)
        self.deep_position = int(deep_position)

    def restart_past(self, prev_track_time: float) -> int:
        return self.deep_position if prev_track_time < self.skip_time else -1
