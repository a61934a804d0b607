"""`MemoryState`: every op in process memory, with the same semantics as the Redis backend (the
simulator in-process, tests)."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from botify.user_state.operations import (
    SESSION_RECORD,
    ClearSession,
    NextInList,
    Op,
    Picked,
    PickInList,
    PushHistory,
    PushSession,
    ResetCursor,
    ResetTurn,
    TakeTurn,
    Turn,
)


# The seed's list rule (the Lua scripts of `redis_backend` are its Redis twin).
def next_position(tracks: np.ndarray, prev: int, restart_past: int, hint: int) -> int:
    n = len(tracks)
    if 0 <= hint < n and tracks[hint] == prev:
        pos = hint
    else:
        found = np.flatnonzero(tracks == prev)
        pos = int(found[0]) if found.size else -1
    if pos < 0 or (restart_past >= 0 and pos > restart_past):
        return 0
    return (pos + 1) % n


class MemoryState:
    """Every op in process memory: lists from a mapping, cursors and sessions in dicts."""

    def __init__(
        self,
        lists: Mapping[str, Mapping[int, np.ndarray]] | None = None,
        session_length: int = 50,
        history_length: int = 10,
    ):
        self.lists = {name: dict(users) for name, users in (lists or {}).items()}
        self.session_length = session_length
        self.history_length = history_length
        self.cursors: dict[tuple[str, int], int] = {}
        self.sessions: dict[int, np.ndarray] = {}
        self.histories: dict[int, np.ndarray] = {}
        self.turns: dict[tuple[str, int], int] = {}  # 2 * steps so far + the pair's opener
        self._lock = threading.Lock()

    def _list(self, name: str, user: int) -> np.ndarray | None:
        tracks = self.lists.get(name, {}).get(user)
        return tracks if tracks is not None and len(tracks) else None

    def run(self, ops: Sequence[Op]) -> list[Any]:
        with self._lock:
            return [self._one(op) for op in ops]

    def _one(self, op: Op) -> Any:
        if isinstance(op, NextInList):
            tracks = self._list(op.lists, op.user)
            if tracks is None:
                return None
            key = (op.scope, op.user)
            pos = next_position(tracks, op.prev, op.restart_past, self.cursors.get(key, -1))
            self.cursors[key] = pos
            return int(tracks[pos])
        if isinstance(op, PickInList):
            tracks = self._list(op.lists, op.user)
            if tracks is None:
                return None
            track = int(tracks[op.draw % len(tracks)])
            whole = np.array(tracks, dtype=np.int64) if op.whole else None
            return Picked(track, len(tracks), int(np.count_nonzero(tracks == track)), whole)
        if isinstance(op, ResetCursor):
            self.cursors.pop((op.scope, op.user), None)
            return None
        if isinstance(op, PushSession):
            return _push(self.sessions, op, self.session_length)
        if isinstance(op, PushHistory):
            return _push(self.histories, op, self.history_length)
        if isinstance(op, TakeTurn):
            key = (op.scope, op.user)
            held = self.turns.get(key, 0)
            index, first = held // 2, held % 2
            if index % 2 == 0:
                first = int(op.coin) & 1
            self.turns[key] = 2 * (index + 1) + first
            return Turn(index, first)
        if isinstance(op, ResetTurn):
            self.turns.pop((op.scope, op.user), None)
            return None
        if isinstance(op, ClearSession):
            self.sessions.pop(op.user, None)
            return None
        raise TypeError(f"unknown op {op!r}")


def _push(held_by_user: dict[int, np.ndarray], op: PushSession | PushHistory, limit: int):
    """Append (track, time) to the user's records, keep the newest `limit`; the records after."""
    record = np.array([(op.track, op.time)], dtype=SESSION_RECORD)
    held = held_by_user.get(op.user)
    held = record if held is None else np.concatenate([held, record])
    held = held[-limit:]
    held_by_user[op.user] = held
    return held.copy()


def memory_lists(rows) -> dict[int, np.ndarray]:
    """{user: tracks} from (user, tracks) pairs, the shape `MemoryState` takes per list set."""
    return {int(user): np.asarray(tracks, dtype=np.int64) for user, tracks in rows}
