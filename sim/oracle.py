"""The oracle: knows the hidden session and picks the unplayed track with the highest expected
time, artist discount included (greedy; the ceiling every recommender is measured against).

Expected time of an unplayed track = sigmoid((score - bias) * sharpness) * gamma**k(artist),
increasing in score for a given artist. So the best track is either the best-scoring track of an
artist not heard yet in the session (discount 1: walk the anchor's tracks by score, skipping
heard artists), or, for an artist already heard, its best-scoring unplayed track times
gamma**k. `OracleSession` keeps both up to date in a few microseconds per step, exactly
(`sim.user_model.oracle_choice`, the brute-force argmax over all tracks, is the reference).
"""

from __future__ import annotations

import math

import numpy as np

from sim.user_model import Population, exact_scores


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


class OracleSession:
    """One session's oracle state: create at session start, then `choose()` / `observe(track)`."""

    def __init__(self, pop: Population, user: int, anchor: int, first_track: int):
        self.pop, self.anchor = pop, int(anchor)
        self.bias, self.sharpness = float(pop.bias[user]), float(pop.sharpness[user])
        self.gamma = float(pop.gamma[user])
        self.top_ids, self.top_scores, _ = pop.index.top(self.anchor)
        self.pos = 0  # next candidate in top_ids not yet known to be of a heard artist
        self.played: set[int] = set()
        self.heard: dict[int, list] = {}  # artist -> [plays, tracks by score, scores, next]
        self.value: dict[int, float] = {}  # heard artist -> value of its best unplayed track
        self.observe(first_track)

    def _base(self, score: float) -> float:
        return _sigmoid((score - self.bias) * self.sharpness)

    def observe(self, track: int) -> None:
        pop, track = self.pop, int(track)
        self.played.add(track)
        artist = int(pop.artist_of[track])
        entry = self.heard.get(artist)
        if entry is None:
            tracks = pop.artist_tracks[pop.artist_offsets[artist] : pop.artist_offsets[artist + 1]]
            scores = exact_scores(pop.index.exact, tracks, self.anchor)
            order = np.lexsort((tracks, -scores))
            entry = self.heard[artist] = [0, tracks[order].tolist(), scores[order].tolist(), 0]
        entry[0] += 1
        tracks = entry[1]
        while entry[3] < len(tracks) and tracks[entry[3]] in self.played:
            entry[3] += 1
        if entry[3] < len(tracks):
            self.value[artist] = self._base(entry[2][entry[3]]) * self.gamma ** entry[0]
        else:
            self.value.pop(artist, None)

    def _best_new_artist(self) -> tuple[float, int]:
        """(value, track) of the best-scoring track by an artist not heard yet."""
        artist_of, heard = self.pop.artist_of, self.heard
        while True:
            while self.pos < len(self.top_ids) and int(artist_of[self.top_ids[self.pos]]) in heard:
                self.pos += 1
            if self.pos < len(self.top_ids):
                return self._base(float(self.top_scores[self.pos])), int(self.top_ids[self.pos])
            if len(self.top_ids) >= self.pop.n_tracks:
                return -1.0, -1
            # every candidate is by a heard artist: look twice as deep (rare, long sessions)
            self.top_ids, self.top_scores, _ = self.pop.index.search(
                self.anchor, min(2 * len(self.top_ids), self.pop.n_tracks)
            )

    def choose(self) -> int:
        value, track = self._best_new_artist()
        if self.value:
            artist = max(self.value, key=self.value.__getitem__)
            entry = self.heard[artist]
            other = self.value[artist], entry[1][entry[3]]
            if other[0] > value or (other[0] == value and other[1] < track):
                value, track = other
        if track < 0:  # every track played: anything is a repeat
            return int(self.top_ids[0])
        return track
