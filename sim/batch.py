"""Many sessions stepped side by side: the simulator's engine (sim.run, calibration, the demo).

The listener is `RecEnv`'s (the same `sim.user_model` functions and neighbour index). What makes
this engine different is where its randomness comes from: every draw of a session is a hash of
(the run's key, the session's index, the step, the purpose) (`Draws`), not the next number of a
shared generator. So session i is the same session, with the same user, first track, budget
draws and per-step service seeds, whatever the batch size, whichever sessions run beside it,
and whichever transport carries its steps: the service's batch path and its per-request path
see exactly the same requests (tests compare their event logs). Per run, `sessions` sessions
start in index order; a user never has two live sessions at once (a later session of a busy
user waits), so a user's requests reach the service in one order.

A policy answers the live rows of one round (`Policy.step`): their /next steps, plus the /last
steps of the sessions that ended in the round before (sent together, so a remote service gets
one call per round). `RandomPolicy` and `OraclePolicy` run in-process; `ServicePolicy` asks a
Botify service (sim.transport: in-process, or over HTTP by batch or per request).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from botify.splitmix import GOLDEN as SPLITMIX_GOLDEN
from botify.splitmix import mix64_array as mix64
from sim.oracle import OracleSession
from sim.user_model import Population, listen_time, session_scores

GOLDEN = np.uint64(SPLITMIX_GOLDEN)

# purposes of a draw (one stream each)
USER, INTEREST, FIRST, BUDGET, SERVICE_SEED, POLICY = range(1, 7)


def run_key(*parts: int) -> int:
    """A 64-bit key for a run from small integers (seed, process, day, ...)."""
    key = np.zeros(1, dtype=np.uint64)
    for part in parts:
        with np.errstate(over="ignore"):
            key = mix64(key ^ mix64(np.array([part & (2**64 - 1)], dtype=np.uint64)) + GOLDEN)
    return int(key[0])


class Draws:
    """Counter-based random numbers: draw(sessions, steps, purpose) is a pure function."""

    def __init__(self, key: int):
        self.key = np.uint64(key)

    def session_keys(self, index: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return mix64(self.key + mix64(np.asarray(index, dtype=np.uint64) * GOLDEN))

    @staticmethod
    def bits(keys: np.ndarray, step, purpose: int) -> np.ndarray:
        """uint64 per session key, for this step and purpose."""
        steps = np.asarray(step, dtype=np.uint64)
        with np.errstate(over="ignore"):
            salt = mix64(steps * np.uint64(0x100000001B3) + np.uint64(purpose) * GOLDEN)
        return mix64(keys ^ salt)

    @classmethod
    def integers(cls, keys: np.ndarray, step, purpose: int, n) -> np.ndarray:
        return (cls.bits(keys, step, purpose) % np.asarray(n, dtype=np.uint64)).astype(np.int64)

    @classmethod
    def uniform(cls, keys: np.ndarray, step, purpose: int) -> np.ndarray:
        return (cls.bits(keys, step, purpose) >> np.uint64(11)).astype(np.float64) * 2.0**-53


@dataclass
class SessionResults:
    user: np.ndarray  # int64, one per finished session, in order of ending
    time: np.ndarray  # float64: session time (sum of times heard after the first track)
    tracks: np.ndarray  # int64: tracks recommended in the session
    index: np.ndarray  # int64: the session's index in its run

    @property
    def steps(self) -> int:
        return int(self.tracks.sum())

    def as_logged(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(user, time, tracks) per session counted as the service's log and the course count
        them: the first track (time 1.0) is an event too. Calibration, the ceiling and the A/B
        report all use this count."""
        return self.user, self.time + 1.0, self.tracks + 1

    def in_order(self) -> SessionResults:
        order = np.argsort(self.index, kind="stable")
        return SessionResults(
            self.user[order], self.time[order], self.tracks[order], self.index[order]
        )


class Policy(Protocol):
    def step(self, sim: BatchSimulator, act: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Tracks for the rows in `act` (their /next); the sessions in rows `end` ended in the
        round before (their /last: user, last track and time are still in those rows)."""
        ...


class BatchSimulator:
    """Runs `sessions` sessions of `users` (default: all) with at most `batch_size` live at once.

    `key` (see `run_key`) fixes every session; `progress(n)` is called with the number of
    sessions that ended in each round.
    """

    def __init__(
        self,
        population: Population,
        key: int,
        batch_size: int = 2048,
        users: np.ndarray | None = None,
        progress=None,
    ):
        self.pop = population
        self.draws = Draws(key)
        self.batch_size = int(batch_size)
        self.users = np.arange(population.n_users) if users is None else np.asarray(users)
        if len(self.users) == 0:
            raise ValueError("no users to simulate")
        self.progress = progress

    def _alloc(self, rows: int) -> None:
        self.key = np.zeros(rows, dtype=np.uint64)  # the session's key (Draws.session_keys)
        self.index = np.full(rows, -1, dtype=np.int64)  # session index, -1: the row is free
        self.user = np.zeros(rows, dtype=np.int64)
        self.anchor = np.zeros(rows, dtype=np.int64)
        self.budget = np.zeros(rows, dtype=np.int64)
        self.steps = np.zeros(rows, dtype=np.int64)
        self.total = np.zeros(rows, dtype=np.float64)
        self.last_track = np.zeros(rows, dtype=np.int64)
        self.last_time = np.ones(rows, dtype=np.float64)
        self.length = np.zeros(rows, dtype=np.int64)  # tracks heard, the first one included
        self.played = np.full((rows, 16), -1, dtype=np.int64)
        self.played_artist = np.full((rows, 16), -1, dtype=np.int64)

    def service_seeds(self, rows: np.ndarray) -> np.ndarray:
        """The seed each row's current step sends to the service (uint64)."""
        return Draws.bits(self.key[rows], self.steps[rows], SERVICE_SEED)

    def policy_integers(self, rows: np.ndarray, n) -> np.ndarray:
        """Draws for an in-process policy (e.g. random), one per row, per step."""
        return Draws.integers(self.key[rows], self.steps[rows], POLICY, n)

    def _start(self, rows: np.ndarray, index: np.ndarray) -> None:
        pop = self.pop
        keys = self.draws.session_keys(index)
        users = self.session_users(index, keys)
        picks = Draws.integers(keys, 0, INTEREST, pop.interest_count(users))
        anchors = pop.interest(users, picks)
        pop.index.warm(anchors)  # one matrix product for the new anchors of this round
        neighbours = [
            pop.index.nearest(a, k) for a, k in zip(anchors, pop.neighbours[users], strict=True)
        ]
        counts = np.array([len(n) for n in neighbours])
        firsts = Draws.integers(keys, 0, FIRST, counts)
        first = np.array([n[p] for n, p in zip(neighbours, firsts, strict=True)], dtype=np.int64)
        self.key[rows], self.index[rows], self.user[rows], self.anchor[rows] = (
            keys,
            index,
            users,
            anchors,
        )
        self.budget[rows] = pop.budget[users]
        self.steps[rows] = 0
        self.total[rows] = 0.0
        self.last_track[rows], self.last_time[rows] = first, 1.0
        self.played[rows] = -1
        self.played_artist[rows] = -1
        self.played[rows, 0], self.played_artist[rows, 0] = first, pop.artist_of[first]
        self.length[rows] = 1

    def session_users(self, index: np.ndarray, keys: np.ndarray | None = None) -> np.ndarray:
        keys = self.draws.session_keys(index) if keys is None else keys
        return self.users[Draws.integers(keys, 0, USER, len(self.users))]

    def run(self, policy: Policy, sessions: int, stop=None) -> SessionResults:
        """Run the sessions; `stop()`, asked every round, ends the run early (live sessions are
        dropped unfinished: benchmarks bound their time this way)."""
        pop = self.pop
        rows = max(1, min(self.batch_size, sessions))
        self._alloc(rows)
        queue = _SessionQueue(self, sessions, limit=4 * rows + 64)
        busy: set[int] = set()  # users with a live session, or whose /last is not sent yet
        free = list(range(rows))
        ending = np.empty(0, dtype=np.int64)  # rows whose session ended last round
        out: list[tuple[np.ndarray, ...]] = []
        max_tracks = pop.params.max_session_tracks

        while True:
            if free:
                starting = queue.take(len(free), busy)
                if starting:
                    taken, free = free[: len(starting)], free[len(starting) :]
                    self._start(np.array(taken), np.array(starting, dtype=np.int64))
            live = np.flatnonzero(self.index >= 0)
            live = live[~np.isin(live, ending)]
            if (not live.size and not ending.size) or (stop is not None and stop()):
                break

            tracks = np.asarray(policy.step(self, live, ending), dtype=np.int64)
            for row in ending.tolist():  # their /last is sent: the rows and users are free
                busy.discard(int(self.user[row]))
                self.index[row] = -1
                free.append(row)
            ending = np.empty(0, dtype=np.int64)
            if not live.size:
                continue

            users = self.user[live]
            repeat = (self.played[live] == tracks[:, None]).any(axis=1)
            artists = pop.artist_of[tracks].astype(np.int64)
            plays = (self.played_artist[live] == artists[:, None]).sum(axis=1)
            scores = session_scores(pop.embeddings, tracks, self.anchor[live])
            times = listen_time(
                scores, pop.bias[users], pop.sharpness[users], pop.gamma[users], plays
            )
            times[repeat] = 0.0
            uniform = Draws.uniform(self.key[live], self.steps[live], BUDGET)
            self.budget[live] -= uniform > times
            pos = self.length[live]
            if pos.max() >= self.played.shape[1]:
                self._grow()
            self.played[live, pos], self.played_artist[live, pos] = tracks, artists
            self.length[live] += 1
            self.steps[live] += 1
            self.total[live] += times
            self.last_track[live], self.last_time[live] = tracks, times

            done = (self.budget[live] <= 0) | (self.steps[live] >= max_tracks)
            if done.any():
                ending = live[done]
                out.append(
                    (self.user[ending].copy(), self.total[ending].copy(),
                     self.steps[ending].copy(), self.index[ending].copy())
                )  # fmt: skip
                if self.progress is not None:
                    self.progress(len(ending))
        if not out:
            empty = np.empty(0, dtype=np.int64)
            return SessionResults(empty, np.empty(0), empty, empty)
        return SessionResults(*(np.concatenate(part) for part in zip(*out, strict=True)))

    def _grow(self) -> None:
        pad = self.played.shape[1]
        self.played = np.pad(self.played, ((0, 0), (0, pad)), constant_values=-1)
        self.played_artist = np.pad(self.played_artist, ((0, 0), (0, pad)), constant_values=-1)


class _SessionQueue:
    """Session indices to start, in index order, skipping (and keeping) those whose user is busy.

    Sessions skipped for a busy user wait in `waiting` (index order) and are looked at first, so
    a user's sessions start in index order. Users are drawn lazily, a chunk at a time, so a run of
    10**9 sessions (a benchmark stopped by time) costs nothing up front.
    """

    def __init__(self, sim: BatchSimulator, sessions: int, limit: int):
        self.sim, self.sessions, self.limit = sim, sessions, limit
        self.next = 0  # the first index not looked at yet
        self.waiting: deque[tuple[int, int]] = deque()  # (index, user) skipped for a busy user

    def take(self, n: int, busy: set[int]) -> list[int]:
        starting: list[int] = []
        kept: deque[tuple[int, int]] = deque()
        while self.waiting and len(starting) < n:
            index, user = self.waiting.popleft()
            if user in busy:
                kept.append((index, user))
            else:
                busy.add(user)
                starting.append(index)
        self.waiting.extendleft(reversed(kept))
        while len(starting) < n and self.next < self.sessions and len(self.waiting) < self.limit:
            chunk = np.arange(self.next, min(self.sessions, self.next + 2 * n), dtype=np.int64)
            self.next = int(chunk[-1]) + 1
            for index, user in zip(
                chunk.tolist(), self.sim.session_users(chunk).tolist(), strict=True
            ):
                if user in busy or len(starting) >= n:
                    self.waiting.append((index, user))
                else:
                    busy.add(user)
                    starting.append(index)
        return starting


class RandomPolicy:
    """Uniformly random tracks (the `dummy` agent), from the sessions' own draws."""

    def step(self, sim, act, end):
        return sim.policy_integers(act, sim.pop.n_tracks)


class OraclePolicy:
    """The oracle (`sim.oracle.OracleSession`), one small state per live session."""

    def __init__(self) -> None:
        self.sessions: dict[int, OracleSession] = {}  # by session index
        self.seen: dict[int, int] = {}

    def step(self, sim, act, end):
        for row in end.tolist():
            self.sessions.pop(int(sim.index[row]), None)
        out = np.empty(act.size, dtype=np.int64)
        for j, row in enumerate(act.tolist()):
            index = int(sim.index[row])
            session = self.sessions.get(index)
            if session is None:
                session = self.sessions[index] = OracleSession(
                    sim.pop, sim.user[row], sim.anchor[row], sim.played[row, 0]
                )
            elif sim.steps[row]:
                session.observe(int(sim.last_track[row]))
            out[j] = session.choose()
        return out
