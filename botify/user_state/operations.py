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
    whole: bool = False  # also answer the whole list (an exploration arm's side needs its chances)


class Picked(NamedTuple):
    """What `PickInList` answers: the track drawn, and the chance it had (copies / size)."""

    track: int
    size: int  # the list's length
    copies: int  # how many of its entries are `track` (1 in a list without repeats)
    tracks: np.ndarray | None = None  # the whole list, when the op asked for it


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


class TakeTurn(NamedTuple):
    """-> `Turn`: this session's step count in `scope` before this step, and the side that opens
    the current pair of steps; the count moves on by one. At an even count (a new pair) the pair's
    opener is `coin` (0 or 1), remembered for the pair's second step. Team-draft's balance in the
    next-track setting (`botify.recommenders.interleave`)."""

    scope: str
    user: int
    coin: int


class Turn(NamedTuple):
    """The result of `TakeTurn`: the step's position in the session (0, 1, ...) and the side (0 or
    1) that opened its pair. The step's side: `first` at an even position, the other at an odd."""

    position: int
    first: int

    @property
    def side(self) -> int:
        return self.first if self.position % 2 == 0 else 1 - self.first


class ResetTurn(NamedTuple):
    """-> None. Forget the user's step count in `scope` (at session end)."""

    scope: str
    user: int


Op = (
    NextInList
    | PickInList
    | ResetCursor
    | PushSession
    | ClearSession
    | PushHistory
    | TakeTurn
    | ResetTurn
)


class Failed(NamedTuple):
    """The result of an op the backend could not run (the step falls back)."""

    reason: str


class StateBackend(Protocol):
    def run(self, ops: Sequence[Op]) -> list[Any]:
        """Every op's result, in order; `Failed` for an op that failed alone. Raises
        redis.RedisError when the backend as a whole is unreachable."""
        ...
