"""The course's 2026 I2I recommender (anokhin/recsys-course-spring-2026,
botify/botify/recommenders/i2i.py): the first unheard neighbour of an anchor from the user's
listening history, the anchor drawn with probability proportional to its listening time.

Per step (one Redis round trip, `botify.user_state.PushHistory`): the play just heard is appended
to the user's history (the last 10 plays across sessions; `/last` appends too and never clears
it), then, as in the course:

1. the anchors are the history's distinct tracks, each weighted by its summed listening time;
2. an anchor is drawn by weight (from the step's seed, so the same steps get the same answers);
3. its item list (`botify.item_lists`: SasRec-I2I, LightFM-I2I, ...) is walked best first and its
   first track not in the history is served;
4. an anchor without a list, or whose list holds only heard tracks, is dropped and another
   drawn; when none is left, the fallback (the course's Random) answers and the event says so.

Where it differs from the course: anchors heard for 0 are never drawn (the course's
`random.choices` draws them only when every weight is 0, and then raises); the course pushes every
user's plays whatever their arm, here only the arms that read the history push it (so the other
arms stay free of Redis), which gives an `i2i` user exactly the course's history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from botify.item_lists import ItemLists
from botify.recommenders import base
from botify.recommenders.base import Context, Recommendation, Recommender, register
from botify.step import Step
from botify.user_state import Failed, Op, PushHistory


@register
class I2I(Recommender):
    name = "i2i"
    tells_chance = False  # its chance of a track it did not pick is not computed here
    uses_state = True

    def __init__(self, ctx: Context, lists: str = "sasrec_i2i", fallback: str = "random"):
        super().__init__(ctx)
        self.lists = base.list_set_name(self.name, lists)
        self.fallback = base.stateless_fallback(self.name, fallback, ctx)

    def list_sets(self) -> set[str]:
        return {self.lists}

    def needs_item_lists(self) -> bool:
        return True

    def ops(self, step: Step) -> Sequence[Op]:
        return (PushHistory(step.user, step.track, step.time),)

    def end_ops(self, step: Step) -> Sequence[Op]:
        return (PushHistory(step.user, step.track, step.time),)

    def recommend(self, step: Step, results: Sequence[Any] = ()) -> Recommendation:
        history = results[0] if results else None
        source = self.ctx.item_lists
        lists = source.get(self.lists) if source is not None else None
        if lists is not None and history is not None and not isinstance(history, Failed):
            newest_first = history["track"][::-1], history["time"][::-1]
            track = pick(*newest_first, lists, step)
            if track is not None:
                return Recommendation(track, False, chance(*newest_first, lists, track))
        return base.fell_back(self.fallback, step)


def _anchors(tracks: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The history's distinct tracks in order of first appearance (newest first) and their summed
    listening times (negative sums count as 0)."""
    anchors, first, inverse = np.unique(tracks, return_index=True, return_inverse=True)
    summed = np.bincount(inverse, weights=times.astype(np.float64), minlength=len(anchors))
    order = np.argsort(first)
    return anchors[order], np.maximum(summed[order], 0.0)


def _first_unheard(anchor: int, lists: ItemLists, heard: set[int]) -> int | None:
    after = lists.get(anchor)
    if after is not None:
        for candidate in after.tolist():
            if candidate not in heard:
                return int(candidate)
    return None


def chance(tracks: np.ndarray, times: np.ndarray, lists: ItemLists, track: int) -> float:
    """The probability that `pick` serves `track` from this history: drawing by weight and
    dropping anchors without an unheard neighbour draws the first anchor that has one with
    probability weight / (summed weight of the anchors that have one), and each such anchor
    serves its first unheard neighbour."""
    anchors, weights = _anchors(tracks, times)
    heard = set(tracks.tolist())
    served = [_first_unheard(int(a), lists, heard) if w > 0 else None
              for a, w in zip(anchors.tolist(), weights.tolist(), strict=True)]  # fmt: skip
    valid = sum(w for w, s in zip(weights.tolist(), served, strict=True) if s is not None)
    mine = sum(w for w, s in zip(weights.tolist(), served, strict=True) if s == track)
    return mine / valid


def pick(tracks: np.ndarray, times: np.ndarray, lists: ItemLists, step: Step) -> int | None:
    """The course's choice over a history given newest first (its Redis list order): None when no
    anchor with a positive weight has an unheard neighbour."""
    anchors, weights = _anchors(tracks, times)
    heard = set(tracks.tolist())
    while weights.any():
        cumulative = np.cumsum(weights)
        threshold = step.draw53() * 2.0**-53 * cumulative[-1]
        at = int(np.searchsorted(cumulative, threshold, side="right"))
        if at == len(weights):  # the draw rounded up to the total: the last anchor that weighs
            at = int(np.flatnonzero(weights)[-1])
        served = _first_unheard(int(anchors[at]), lists, heard)
        if served is not None:
            return served
        weights[at] = 0.0
    return None
