"""The ops: the per-user state a recommender asks for, one small named tuple per kind, and what a
backend answers (`StateBackend`). See `botify.user_state`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

SESSION_RECORD = np.dtype([("track", "<u4"), ("time", "<f4")])


# -- ops ----------------------------------------------------------------------------------------
class NextInList(NamedTuple):
    """-> the track the seed's rule serves after `prev` in the user's list, or None (no list)."""

    lists: str
    scope: str
    user: int
    prev: int
    restart_past: int = -1  # >= 0: restart at the top when prev's position is past this


class PickInList(NamedTuple):
    """-> `Picked`: the track at position `draw % len(list)` of the user's list, the list's length
    and how often the track is in it (the draw's propensity is copies / size), or None (no
    list)."""

    lists: str
    user: int
    draw: int  # a non-negative integer < 2**53


class Picked(NamedTuple):
    """What `PickInList` answers: the track drawn, and the chance it had (copies / size)."""

    track: int
    size: int  # the list's length
    copies: int  # how many of its entries are `track` (1 in a list without repeats)


class ResetCursor(NamedTuple):
    """-> None. Forget the user's cursor in `scope` (at session end)."""

    scope: str
    user: int


class PushSession(NamedTuple):
    """-> the live session after appending (track, time): a SESSION_RECORD array, oldest first."""

    user: int
    track: int
    time: float


class ClearSession(NamedTuple):
    """-> None. The session is over."""

    user: int


class PushHistory(NamedTuple):
    """-> the user's listening history after appending (track, time): a SESSION_RECORD array,
    oldest first, the last `history_length` plays across sessions (never cleared by /last)."""

    user: int
    track: int
    time: float


Op = NextInList | PickInList | ResetCursor | PushSession | ClearSession | PushHistory


class Failed(NamedTuple):
    """The result of an op the backend could not run (the step falls back)."""

    reason: str


class StateBackend(Protocol):
    def run(self, ops: Sequence[Op]) -> list[Any]:
        """Every op's result, in order; `Failed` for an op that failed alone. Raises
        redis.RedisError when the backend as a whole is unreachable."""
        ...
