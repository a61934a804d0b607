"""The track catalog the service needs: artist of each track, tracks of each artist, top-pop.

Loaded once from the world's `tracks.json` (course format, JSON lines
`{"track", "artist", "title", "genre", "pop"}`; `read_tracks_json` is the one reader of that file,
the simulator's world uses it too). Arrays, not dicts: 50,000 tracks load in well
under a second and are shared copy-on-write by forked gunicorn workers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Catalog:
    artist_of: np.ndarray  # int32 (N,): artist id of each track
    artist_names: tuple[str, ...]  # artist id -> name
    titles: tuple[str, ...]
    genres: tuple[str, ...]
    pop: np.ndarray  # float64 (N,)
    artist_tracks: np.ndarray  # int32: tracks grouped by artist (CSR values)
    artist_offsets: np.ndarray  # int64 (A+1,): CSR offsets into artist_tracks
    toppop: np.ndarray  # int32: all tracks, most popular first (ties by track id)

    def __len__(self) -> int:
        return len(self.artist_of)

    def __contains__(self, track: object) -> bool:
        return isinstance(track, int | np.integer) and 0 <= int(track) < len(self)

    def tracks_by_artist(self, artist: int) -> np.ndarray:
        return self.artist_tracks[self.artist_offsets[artist] : self.artist_offsets[artist + 1]]

    def same_artist(self, track: int) -> np.ndarray:
        """All tracks of `track`'s artist (including `track`)."""
        return self.tracks_by_artist(int(self.artist_of[track]))

    def info(self, track: int) -> dict:
        return {
            "track": int(track),
            "artist": self.artist_names[self.artist_of[track]],
            "title": self.titles[track],
            "genre": self.genres[track],
        }

    @classmethod
    def from_records(cls, records: Iterable[Mapping]) -> Catalog:
        rows = sorted(records, key=lambda r: int(r["track"]))
        n = len(rows)
        if [int(r["track"]) for r in rows] != list(range(n)):
            raise ValueError("tracks must be numbered 0..N-1 without gaps")
        # Artist ids in order of first appearance by track id (the simulator's ids too).
        artist_ids: dict[str, int] = {}
        artist_of = np.fromiter(
            (artist_ids.setdefault(str(r["artist"]), len(artist_ids)) for r in rows),
            dtype=np.int32,
            count=n,
        )
        pop = np.fromiter((float(r.get("pop", 0.0)) for r in rows), dtype=np.float64, count=n)
        order = np.argsort(artist_of, kind="stable").astype(np.int32)
        offsets = np.zeros(len(artist_ids) + 1, dtype=np.int64)
        np.cumsum(np.bincount(artist_of, minlength=len(artist_ids)), out=offsets[1:])
        return cls(
            artist_of=artist_of,
            artist_names=tuple(artist_ids),
            titles=tuple(str(r.get("title", "")) for r in rows),
            genres=tuple(str(r.get("genre", "")) for r in rows),
            pop=pop,
            artist_tracks=order,
            artist_offsets=offsets,
            toppop=np.lexsort((np.arange(n), -pop)).astype(np.int32),
        )

    @classmethod
    def from_tracks_json(cls, path: str | Path) -> Catalog:
        return cls.from_records(read_tracks_json(path))


def read_tracks_json(path: str | Path) -> list[dict]:
    """The world's `tracks.json` (JSON lines), sorted by track id, checked to be 0..N-1: the one
    reader of the file, for the service's catalog and the simulator's world."""
    with open(path, encoding="utf-8") as f:
        rows = sorted(
            (json.loads(line) for line in f if line.strip()), key=lambda r: int(r["track"])
        )
    if [int(r["track"]) for r in rows] != list(range(len(rows))):
        raise ValueError(f"{path}: tracks must be numbered 0..N-1 without gaps")
    return rows
