"""The simulated listener (the course simulator's user model), shared by the Env and the batch path.

A session picks one of the user's interests; its embedding is the session embedding; the first
track is drawn uniformly from the interest's `interest_neighbours` nearest tracks by inner
product (the interest itself included, as the course's exact faiss search did) and counts as
heard in full. For a recommended track:

    repeat within the session -> time 0, otherwise
    time = round(sigmoid((dot(track, session) - consume_bias) * consume_sharpness) * gamma**k, 2)

with k = plays of the track's artist so far in the session (the first track and repeats count,
as in the course). The budget drops by one when a uniform draw exceeds `time` (probability
1 - time); the session ends when it reaches 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from sim.world import World


@dataclass(frozen=True)
class UserModelParams:
    """Defaults for fields a user row does not set (the course's UserCatalogConfig defaults)."""

    interest_neighbours: int = 10
    session_budget: int = 5
    artist_discount_gamma: float = 0.8
    consume_bias: float = 5.0
    consume_sharpness: float = 1.0
    # Not in the course: a safety stop for listeners who would never leave (time rounds to 1.0
    # for every track an oracle finds); such a session ends as truncated.
    max_session_tracks: int = 1000


class Population:
    """Per-user parameters as arrays (per-user overrides applied), plus the world's tracks."""

    def __init__(self, world: World, params: UserModelParams | None = None):
        self.params = params = params or UserModelParams()
        users = world.users
        self.embeddings = world.embeddings
        catalog = world.catalog  # artist ids and tracks by artist (CSR), as the service has them
        self.artist_of = catalog.artist_of
        self.n_artists = len(catalog.artist_names)
        self.n_tracks, self.n_users = world.n_tracks, world.n_users
        self.artist_tracks = catalog.artist_tracks.astype(np.int64)
        self.artist_offsets = catalog.artist_offsets

        def column(name, default, dtype):
            return np.array([u.get(name, default) for u in users], dtype=dtype)

        self.bias = column("consume_bias", params.consume_bias, np.float64)
        self.sharpness = column("consume_sharpness", params.consume_sharpness, np.float64)
        self.neighbours = column("interest_neighbours", params.interest_neighbours, np.int64)
        self.budget = column("session_budget", params.session_budget, np.int64)
        self.gamma = column("artist_discount_gamma", params.artist_discount_gamma, np.float64)
        if (self.neighbours < 1).any() or (self.budget < 1).any():
            raise ValueError("interest_neighbours and session_budget must be >= 1")
        counts = np.array([len(u["interests"]) for u in users], dtype=np.int64)
        self.interest_offsets = np.concatenate([[0], np.cumsum(counts)])
        self.interests = np.array([int(t) for u in users for t in u["interests"]], dtype=np.int64)
        self.index = NeighbourIndex(self.embeddings)

    def interest_count(self, users: np.ndarray) -> np.ndarray:
        return self.interest_offsets[users + 1] - self.interest_offsets[users]

    def interest(self, users: np.ndarray, picks: np.ndarray) -> np.ndarray:
        return self.interests[self.interest_offsets[users] + picks]


class NeighbourIndex:
    """Exact top-k by inner product (the course used a flat faiss index), cached per query track.

    Scores are exact dot products in float64 (`exact_scores`: einsum, a fixed summation order), so
    a query's list is the same whoever asks, alone or in a batch: a float32 matrix product only
    proposes candidates (`_margin` more than needed, far beyond its rounding), which are then
    scored exactly. Order: score descending, then track id; a query keeps its best `depth`
    tracks (the oracle's candidates), and the k nearest are their prefix.
    """

    _margin = 16
    _chunk = 256

    def __init__(self, embeddings: np.ndarray, depth: int = 64):
        self.embeddings = embeddings
        self.exact = embeddings.astype(np.float64)
        self.depth = max(1, min(depth, len(embeddings) - 1))
        self._top: dict[int, tuple[np.ndarray, np.ndarray, float]] = {}

    def scores(self, track: int) -> np.ndarray:
        """Every track's exact dot product with `track` (float64)."""
        return exact_scores(self.exact, np.arange(len(self.exact)), int(track))

    def top(self, track: int) -> tuple[np.ndarray, np.ndarray, float]:
        """(best `depth` tracks, their scores, the best score of all other tracks)."""
        found = self._top.get(int(track))
        if found is None:
            self.warm([track])
            found = self._top[int(track)]
        return found

    def nearest(self, track: int, k: int) -> np.ndarray:
        if k <= self.depth:
            return self.top(track)[0][:k]
        return self.search(int(track), int(k))[0]

    def warm(self, tracks) -> None:
        """Compute the top lists of every track not cached yet, a chunk of queries at a time."""
        missing = [
            t for t in np.unique(np.asarray(tracks, dtype=np.int64)).tolist() if t not in self._top
        ]
        for lo in range(0, len(missing), self._chunk):
            chunk = missing[lo : lo + self._chunk]
            for track, found in zip(chunk, self._search_many(chunk, self.depth), strict=True):
                self._top[track] = found

    def search(self, track: int, k: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Like `top`, uncached, for any k (the oracle going deeper)."""
        return self._search_many([int(track)], int(k))[0]

    def _search_many(self, tracks: list[int], k: int) -> list[tuple[np.ndarray, np.ndarray, float]]:
        n = len(self.embeddings)
        k = min(k, n)
        want = min(n, k + 1 + self._margin)  # k, the best of the rest, and a safety margin
        rough = self.embeddings[tracks] @ self.embeddings.T  # float32: candidates only
        if want < n:
            candidates = np.argpartition(rough, n - want, axis=1)[:, n - want :]
        else:
            candidates = np.broadcast_to(np.arange(n), (len(tracks), n))
        out = []
        for track, cand in zip(tracks, candidates, strict=True):
            best = exact_scores(self.exact, cand, track)
            order = np.lexsort((cand, -best))
            cand, best = cand[order], best[order]
            rest = float(best[k]) if k < n else -np.inf
            out.append((cand[:k].astype(np.int64), best[:k], rest))
        return out


def exact_scores(exact: np.ndarray, tracks: np.ndarray, query: int) -> np.ndarray:
    """dot(track, query) in float64 with einsum's fixed order: the same bits in any batch."""
    return np.einsum("ij,j->i", exact[tracks], exact[query])


def session_scores(embeddings: np.ndarray, tracks: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """dot(track, session embedding) row by row, computed identically for 1 or many rows."""
    return np.einsum("ij,ij->i", embeddings[tracks], embeddings[anchors]).astype(np.float64)


def listen_time(score, bias, sharpness, gamma, artist_plays):
    """Fraction of a (non-repeated) track heard, rounded to 2 decimals as in the course."""
    raw = expit((np.asarray(score, dtype=np.float64) - bias) * sharpness)
    return np.round(raw * np.power(gamma, artist_plays), 2)


def expected_time(score, bias, sharpness, gamma, artist_plays):
    """The oracle's objective: the unrounded expected time of a not-yet-played track."""
    return expit((np.asarray(score, dtype=np.float64) - bias) * sharpness) * np.power(
        gamma, artist_plays
    )


def oracle_choice(pop: Population, user: int, scores: np.ndarray, played, artist_plays) -> int:
    """The unplayed track with the highest expected time, over all tracks (ties: lowest id).

    `scores`: every track's dot with the session embedding; `artist_plays`: {artist: plays}.
    """
    counts = np.zeros(pop.n_artists, dtype=np.float64)
    for artist, n in artist_plays.items():
        counts[artist] = n
    values = expected_time(
        scores, pop.bias[user], pop.sharpness[user], pop.gamma[user], counts[pop.artist_of]
    )
    values[np.asarray(played, dtype=np.int64)] = -1.0
    return int(np.argmax(values))
