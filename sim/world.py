"""The simulated world: tracks (metadata + hidden embeddings) and users, in the course formats.

Files in a world directory (the course formats, so the course's own data drops in unchanged):
- `tracks.json`: JSON lines `{"track", "artist", "title", "genre", "pop"}`, tracks 0..N-1;
- `tracks.npy`: float32 (N, D), row i = track i (the simulator's hidden truth);
- `users.json`: JSON lines `{"user", "interests", "consume_bias", "consume_sharpness"}`, plus
  optional per-user `interest_neighbours`, `session_budget`, `artist_discount_gamma`.

The default world is generated, deterministic from a seed (byte-identical files):
genres -> artists (heavy-tailed number of tracks) -> tracks close to their artist; Zipf-like
popularity; each user gets 3 interests drawn by popularity, `consume_bias ~ U(0, 10)` and
`consume_sharpness = U(1, 2) ** +-1` as in the course. The scales below are calibrated with
`python -m sim.calibrate` against the course's measurements on its real-data world.

    python -m sim.world --out data/world --seed 42 [--tracks 50000 --users 10000 --dim 100]
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import click
import numpy as np

from botify.catalog import Catalog, read_tracks_json

GENRES = (
    "rock", "pop", "jazz", "blues", "metal", "punk", "folk", "country", "electronic", "techno",
    "house", "ambient", "hip-hop", "rap", "r&b", "soul", "funk", "disco", "reggae", "latin",
    "classical", "soundtrack", "indie", "world",
)  # fmt: skip
_SYLLABLES = (
    "ka", "lo", "mi", "ra", "ne", "to", "su", "vi", "da", "re", "lu", "mo", "zi", "ta", "po",
    "ve", "sa", "no", "li", "ru", "be", "go", "fa", "ch", "el", "an", "or", "is", "um", "ex",
)  # fmt: skip

# Optional per-user overrides (course semantics): present in users.json only when set.
USER_OVERRIDES = ("interest_neighbours", "session_budget", "artist_discount_gamma")


@dataclass(frozen=True)
class WorldShape:
    """Knobs of the generator. Embedding = genre + artist + track parts (random directions);
    the dot product of two tracks of one artist is about genre_norm**2 + artist_norm**2, of one
    genre about genre_norm**2, of unrelated tracks about 0 (std ~ norm**2 / sqrt(effective_dim))."""

    tracks: int = 50_000
    users: int = 10_000
    dim: int = 100
    genres: int = 24
    mainstream_norm: float = 0.6  # popular tracks share a direction, scaled by pop ** 0.25
    effective_dim: int = 20  # > 0: tracks live in a random subspace of this rank (wider dots)
    genre_norm: float = 1.7
    artist_norm: float = 1.45
    track_norm: float = 1.3
    artist_size_alpha: float = 1.2  # Pareto tail of tracks per artist (smaller = heavier)
    artist_size_scale: float = 3.0
    max_artist_tracks: int = 200
    zipf_exponent: float = 1.0  # popularity ~ rank ** -exponent
    artist_pop_weight: float = 0.5  # how much an artist's fame drives its tracks' popularity
    interests: int = 3


@dataclass
class World:
    """Tracks and users as arrays (metadata kept for writing and for the service's catalog)."""

    embeddings: np.ndarray  # float32 (N, D)
    artist_names: list[str]  # per track
    titles: list[str]
    genres: list[str]
    pop: np.ndarray  # float64 (N,)
    users: list[dict]  # users.json rows, user i at index i

    @property
    def n_tracks(self) -> int:
        return len(self.embeddings)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @cached_property
    def catalog(self) -> Catalog:
        """The service's view of the tracks (artist ids, tracks by artist, top-pop)."""
        return Catalog.from_records(self.track_records())

    def artist_ids(self) -> np.ndarray:
        """int32 artist id per track (ids in order of first appearance)."""
        return self.catalog.artist_of

    def track_records(self):
        for i in range(self.n_tracks):
            yield {
                "track": i,
                "artist": self.artist_names[i],
                "title": self.titles[i],
                "genre": self.genres[i],
                "pop": float(self.pop[i]),
            }

    def save(self, out: str | Path) -> Path:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "tracks.json", "w", encoding="utf-8") as f:
            for rec in self.track_records():
                f.write(json.dumps(rec) + "\n")
        np.save(out / "tracks.npy", np.ascontiguousarray(self.embeddings, dtype=np.float32))
        with open(out / "users.json", "w", encoding="utf-8") as f:
            for rec in self.users:
                f.write(json.dumps(rec) + "\n")
        return out

    @classmethod
    def load(cls, path: str | Path) -> World:
        path = Path(path)
        return cls.load_files(path / "tracks.json", path / "tracks.npy", path / "users.json")

    @classmethod
    def load_files(cls, tracks_json: Path, tracks_npy: Path, users_json: Path) -> World:
        """The three world files by their own paths (the course's config names each one)."""
        tracks = read_tracks_json(tracks_json)
        embeddings = np.load(tracks_npy, allow_pickle=False)
        if embeddings.ndim != 2 or len(embeddings) != len(tracks):
            raise ValueError(
                f"{tracks_npy}: shape {embeddings.shape} does not match {len(tracks)} tracks"
            )
        users = sorted(_read_jsonl(users_json), key=lambda r: int(r["user"]))
        if [int(r["user"]) for r in users] != list(range(len(users))):
            raise ValueError(f"{users_json}: users must be numbered 0..M-1")
        for u in users:
            bad = [t for t in u["interests"] if not 0 <= int(t) < len(tracks)]
            if not u["interests"] or bad:
                raise ValueError(f"user {u['user']}: interests must be known tracks, got {bad}")
        return cls(
            embeddings=np.ascontiguousarray(embeddings, dtype=np.float32),
            artist_names=[str(r["artist"]) for r in tracks],
            titles=[str(r.get("title", "")) for r in tracks],
            genres=[str(r.get("genre", "")) for r in tracks],
            pop=np.array([float(r.get("pop", 0.0)) for r in tracks], dtype=np.float64),
            users=users,
        )


def _read_jsonl(path: Path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _name(rng: np.random.Generator, syllables: int) -> str:
    parts = rng.choice(len(_SYLLABLES), size=syllables)
    return "".join(_SYLLABLES[p] for p in parts).capitalize()


def _artist_sizes(rng: np.random.Generator, shape: WorldShape) -> np.ndarray:
    """Tracks per artist: 1 + Pareto, heavy-tailed, summing exactly to shape.tracks."""
    sizes: list[int] = []
    total = 0
    while total < shape.tracks:
        draw = 1 + np.floor(rng.pareto(shape.artist_size_alpha, 4096) * shape.artist_size_scale)
        draw = np.minimum(draw, shape.max_artist_tracks).astype(np.int64)
        for s in draw:
            s = int(min(s, shape.tracks - total))
            sizes.append(s)
            total += s
            if total >= shape.tracks:
                break
    return np.array(sizes, dtype=np.int64)


def _unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    v = rng.standard_normal(dim)
    return v / np.linalg.norm(v)


def _random_directions(rng: np.random.Generator, n: int, dim: int, norm: float) -> np.ndarray:
    return rng.standard_normal((n, dim)) * (norm / np.sqrt(dim))


def generate(seed: int, shape: WorldShape | None = None) -> World:
    shape = shape or WorldShape()
    rng = np.random.default_rng(seed)
    n, dim = shape.tracks, shape.dim
    d = min(shape.effective_dim, dim) if shape.effective_dim > 0 else dim

    # Genres (some bigger than others), artists in genres, tracks around their artist.
    sizes = _artist_sizes(rng, shape)
    n_artists = len(sizes)
    genre_weight = rng.dirichlet(np.full(shape.genres, 2.0))
    artist_genre = rng.choice(shape.genres, size=n_artists, p=genre_weight)
    genre_centre = _random_directions(rng, shape.genres, d, shape.genre_norm)
    artist_centre = genre_centre[artist_genre] + _random_directions(
        rng, n_artists, d, shape.artist_norm
    )
    artist_of = np.repeat(np.arange(n_artists), sizes)
    # Tracks are shuffled so an artist's tracks are not consecutive ids.
    order = rng.permutation(n)
    artist_of = artist_of[order]
    emb = artist_centre[artist_of] + _random_directions(rng, n, d, shape.track_norm)
    # Popularity: a latent mixing artist fame and track appeal, then Zipf over its ranks.
    artist_fame = rng.standard_normal(n_artists)
    latent = shape.artist_pop_weight * artist_fame[artist_of] + rng.standard_normal(n)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-latent, kind="stable")] = np.arange(1, n + 1)
    pop = rank.astype(np.float64) ** -shape.zipf_exponent
    pop = np.round(pop / pop.max(), 8)

    if shape.mainstream_norm:
        emb += np.outer(pop**0.25, _unit(rng, d)) * shape.mainstream_norm
    if d < dim:  # rotate the rank-d world into `dim` dimensions (dot products unchanged)
        basis, _ = np.linalg.qr(rng.standard_normal((dim, d)))
        emb = emb @ basis.T

    artist_names = [f"{_name(rng, 2)} {_name(rng, 3)}" for _ in range(n_artists)]
    # Make names unique: the catalog identifies artists by name.
    artist_names = [f"{nm} #{i}" for i, nm in enumerate(artist_names)]
    titles = [_name(rng, int(k)) for k in rng.integers(2, 5, size=n)]

    users = _generate_users(rng, shape, pop)
    return World(
        embeddings=emb.astype(np.float32),
        artist_names=[artist_names[a] for a in artist_of],
        titles=titles,
        genres=[GENRES[artist_genre[a] % len(GENRES)] for a in artist_of],
        pop=pop,
        users=users,
    )


def _generate_users(rng: np.random.Generator, shape: WorldShape, pop: np.ndarray) -> list[dict]:
    m, k = shape.users, min(shape.interests, len(pop))
    p = pop / pop.sum()
    interests = rng.choice(len(pop), size=(m, k), p=p)
    for row in interests:  # redraw repeated interests (rare), keeping the draw by popularity
        while len(set(row.tolist())) < k:
            row[:] = rng.choice(len(pop), size=k, p=p)
    bias = rng.uniform(0.0, 10.0, size=m)
    sharpness = rng.uniform(1.0, 2.0, size=m) ** rng.choice([-1.0, 1.0], size=m)
    return [
        {
            "user": i,
            "interests": [int(t) for t in interests[i]],
            "consume_bias": float(bias[i]),
            "consume_sharpness": float(sharpness[i]),
        }
        for i in range(m)
    ]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="directory to write the world into")  # fmt: skip
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--tracks", type=click.IntRange(1), default=WorldShape.tracks, show_default=True)
@click.option("--users", type=click.IntRange(1), default=WorldShape.users, show_default=True)
@click.option("--dim", type=click.IntRange(1), default=WorldShape.dim, show_default=True)
def cli(out: str, seed: int, tracks: int, users: int, dim: int) -> None:
    """Generate the default world (deterministic from its seed) in the course formats."""
    started = time.perf_counter()
    world = generate(seed, WorldShape(tracks=tracks, users=users, dim=dim))
    saved = world.save(out)
    click.echo(
        f"world seed={seed}: {world.n_tracks} tracks, {len(set(world.artist_names))} artists,"
        f" {world.n_users} users, dim {world.embeddings.shape[1]} -> {saved}"
        f" ({time.perf_counter() - started:.1f} s)",
        err=True,
    )


if __name__ == "__main__":
    cli(prog_name="python -m sim.world")
