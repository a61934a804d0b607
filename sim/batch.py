"""Many sessions stepped together with numpy: the fast in-process path (calibration, benchmarks).

Same listener as `RecEnv` (the same `sim.user_model` functions and neighbour index), with one
generator for the whole run: `batch_size` sessions run side by side, and a finished session's
row starts the next session until `sessions` have run. Reproducible for a given seed and
batch size; its random stream differs from the Env's, so the two agree in distribution (tested),
not draw by draw.

Policies see the batch and return one track per live row: `RandomPolicy`, `OraclePolicy`
(a few microseconds per step, exact), and `RecommenderPolicy` (a service
recommender class from `botify.recommenders`, called row by row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.oracle import OracleSession
from sim.user_model import Population, listen_time, session_scores


@dataclass
class SessionResults:
    user: np.ndarray  # int64, one per finished session
    time: np.ndarray  # float64: session time (sum of times heard)
    tracks: np.ndarray  # int64: tracks recommended in the session

    @property
    def steps(self) -> int:
        return int(self.tracks.sum())


class BatchSimulator:
    def __init__(self, population: Population, rng: np.random.Generator, batch_size: int = 2048):
        self.pop, self.rng, self.batch_size = population, rng, batch_size

    def _alloc(self, rows: int) -> None:
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

    def _start(self, rows: np.ndarray) -> None:
        pop, rng = self.pop, self.rng
        users = rng.integers(pop.n_users, size=len(rows))
        anchors = pop.interest(users, rng.integers(pop.interest_count(users)))
        neighbours = [
            pop.index.nearest(a, k) for a, k in zip(anchors, pop.neighbours[users], strict=True)
        ]
        picks = rng.integers(np.array([len(n) for n in neighbours]))
        first = np.array([n[p] for n, p in zip(neighbours, picks, strict=True)], dtype=np.int64)
        self.user[rows], self.anchor[rows] = users, anchors
        self.budget[rows] = pop.budget[users]
        self.steps[rows] = 0
        self.total[rows] = 0.0
        self.last_track[rows], self.last_time[rows] = first, 1.0
        self.played[rows] = -1
        self.played_artist[rows] = -1
        self.played[rows, 0], self.played_artist[rows, 0] = first, pop.artist_of[first]
        self.length[rows] = 1

    def run(self, policy, sessions: int) -> SessionResults:
        pop, rng = self.pop, self.rng
        rows = min(self.batch_size, sessions)
        self._alloc(rows)
        live = np.arange(rows)
        self._start(live)
        policy.start(self, live)
        started = rows
        out_user, out_time, out_tracks = [], [], []
        max_tracks = pop.params.max_session_tracks
        while live.size:
            tracks = np.asarray(policy.act(self, live), dtype=np.int64)
            users = self.user[live]
            repeat = (self.played[live] == tracks[:, None]).any(axis=1)
            artists = pop.artist_of[tracks].astype(np.int64)
            plays = (self.played_artist[live] == artists[:, None]).sum(axis=1)
            scores = session_scores(pop.embeddings, tracks, self.anchor[live])
            times = listen_time(
                scores, pop.bias[users], pop.sharpness[users], pop.gamma[users], plays
            )
            times[repeat] = 0.0
            self.budget[live] -= rng.random(live.size) > times
            pos = self.length[live]
            if pos.max() >= self.played.shape[1]:
                self._grow()
            self.played[live, pos], self.played_artist[live, pos] = tracks, artists
            self.length[live] += 1
            self.steps[live] += 1
            self.total[live] += times
            self.last_track[live], self.last_time[live] = tracks, times
            policy.observe(self, live, tracks, times)

            done = (self.budget[live] <= 0) | (self.steps[live] >= max_tracks)
            if done.any():
                finished = live[done]
                out_user.append(self.user[finished].copy())
                out_time.append(self.total[finished].copy())
                out_tracks.append(self.steps[finished].copy())
                policy.end(self, finished)
                fresh = finished[: max(0, min(len(finished), sessions - started))]
                if fresh.size:
                    self._start(fresh)
                    policy.start(self, fresh)
                    started += fresh.size
                if fresh.size < finished.size:
                    live = live[~np.isin(live, finished[fresh.size :])]
        return SessionResults(
            user=np.concatenate(out_user),
            time=np.concatenate(out_time),
            tracks=np.concatenate(out_tracks),
        )

    def _grow(self) -> None:
        pad = self.played.shape[1]
        self.played = np.pad(self.played, ((0, 0), (0, pad)), constant_values=-1)
        self.played_artist = np.pad(self.played_artist, ((0, 0), (0, pad)), constant_values=-1)


class Policy:
    def start(self, sim: BatchSimulator, rows: np.ndarray) -> None:
        """New sessions begin in `rows`."""

    def act(self, sim: BatchSimulator, live: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def observe(self, sim: BatchSimulator, live, tracks, times) -> None:
        """The live rows just heard `tracks` for `times`."""

    def end(self, sim: BatchSimulator, rows: np.ndarray) -> None:
        """Sessions in `rows` are over (the service's /last)."""


class RandomPolicy(Policy):
    """Uniformly random tracks (the `dummy` agent)."""

    def act(self, sim, live):
        return sim.rng.integers(sim.pop.n_tracks, size=live.size)


class RecommenderPolicy(Policy):
    """A service recommender (`botify.recommenders`) in-process, on the simulator's generator."""

    def __init__(self, name: str, catalog, **params):
        from botify import recommenders

        self.ctx = recommenders.Context(catalog=catalog)
        self.recommender = recommenders.build(name, self.ctx, **params)

    def act(self, sim, live):
        self.ctx.rng = sim.rng
        recommend = self.recommender.recommend_next
        return np.fromiter(
            (
                recommend(int(u), int(t), float(x))
                for u, t, x in zip(
                    sim.user[live], sim.last_track[live], sim.last_time[live], strict=True
                )
            ),
            dtype=np.int64,
            count=live.size,
        )

    def end(self, sim, rows):
        for u in sim.user[rows]:
            self.recommender.on_session_end(int(u))


class OraclePolicy(Policy):
    """The oracle (`sim.oracle.OracleSession`), one small state per live session."""

    def start(self, sim, rows):
        if not hasattr(self, "sessions") or len(self.sessions) != len(sim.user):
            self.sessions: list[OracleSession | None] = [None] * len(sim.user)
        for row in rows:
            self.sessions[row] = OracleSession(
                sim.pop, sim.user[row], sim.anchor[row], sim.last_track[row]
            )

    def observe(self, sim, live, tracks, times):
        sessions = self.sessions
        for row, track in zip(live.tolist(), tracks.tolist(), strict=True):
            sessions[row].observe(track)

    def act(self, sim, live):
        sessions = self.sessions
        return np.fromiter(
            (sessions[row].choose() for row in live.tolist()), dtype=np.int64, count=live.size
        )
