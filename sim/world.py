"""The simulated world: tracks (metadata + hidden embeddings) and users, in the course formats.

Files in a world directory (the course formats, so the course's own data drops in unchanged):
- `tracks.json`: JSON lines `{"track", "artist", "title", "genre", "pop"}`, tracks 0..N-1;
- `tracks.npy`: float32 (N, D), row i = track i (the simulator's hidden truth);
- `users.json`: JSON lines `{"user", "interests", "consume_bias", "consume_sharpness"}`, plus
  optional per-user `interest_neighbours`, `session_budget`, `artist_discount_gamma`.

The default world is generated, deterministic from a seed (byte-identical files):
genres -> artists (heavy-tailed number of tracks) -> tracks close to their artist; Zipf-like
popularity on an axis of its own; each user gets 3 interests drawn with weight pop ** 0.3,
`consume_bias ~ U(0, 10)` and `consume_sharpness = U(1, 2) ** +-1` as in the course. The scales
below are calibrated with `python -m sim.calibrate` against the course's measurements on its
real-data world. Each part of the world draws from its own random stream (`STREAMS`).

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
    """Knobs of the generator. Embedding = genre + artist + track parts (random directions in an
    `effective_dim`-dimensional space) plus popularity on an axis of its own; the dot product of
    two tracks of one artist is about genre_norm**2 + artist_norm**2, of one genre about
    genre_norm**2, of unrelated tracks about 0 (std ~ norm**2 / sqrt(effective_dim)), plus
    mainstream_norm**2 * (pop_a * pop_b) ** mainstream_pop_exponent.

    The defaults are calibrated against the course's real-data world (`python -m sim.calibrate`,
    docs/sim.md): Random's level, StickyArtist and TopPop against Random, and the spread of the
    users' interests; they hold on several world seeds."""

    tracks: int = 50_000
    users: int = 10_000
    dim: int = 100
    genres: int = 64  # more genres: less spread of Random's level from world seed to world seed
    genre_concentration: float = 2.0  # Dirichlet concentration of genre sizes (larger = more even)
    mainstream_norm: float = 3.0  # popular tracks share an axis of their own, scaled by pop ** e
    mainstream_pop_exponent: float = 0.25  # e above
    effective_dim: int = 18  # the genre/artist/track space's rank (smaller: wider dot products)
    genre_norm: float = 2.18
    artist_norm: float = 1.88
    track_norm: float = 1.3
    # How much tracks' norms (genre + artist + track parts) keep their spread: 1 as drawn, 0 all
    # equal. Inner products favour long vectors, so spread norms make a few tracks the nearest
    # neighbours of many (hubs) and shrink the set of tracks any session starts from.
    norm_spread: float = 0.0
    artist_size_alpha: float = 2.0  # Pareto tail of tracks per artist (smaller = heavier)
    artist_size_scale: float = 8.0
    max_artist_tracks: int = 200
    zipf_exponent: float = 1.0  # popularity ~ rank ** -exponent
    artist_pop_weight: float = 0.5  # how much an artist's fame drives its tracks' popularity
    interests: int = 3
    # A user's interests are drawn with weight pop ** this: 1 piled them on a few hits (one track
    # was the interest of 2,181 users); the course's users spread over 21,021 distinct tracks.
    interest_pop_exponent: float = 0.3


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


def _random_directions(rng: np.random.Generator, n: int, dim: int, norm: float) -> np.ndarray:
    return rng.standard_normal((n, dim)) * (norm / np.sqrt(dim))


# One independent random stream per part of the world (numpy SeedSequence children), so that a
# knob of one part leaves every other part's draws as they were: two worlds that differ in one
# parameter differ only where that parameter acts (calibration compares them like for like).
STREAMS = ("artists", "genres", "geometry", "tracks", "popularity", "names", "users")


def streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {
        name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)
    }


def generate(seed: int, shape: WorldShape | None = None) -> World:
    shape = shape or WorldShape()
    rng = streams(seed)
    n, dim = shape.tracks, shape.dim
    if dim < 2:
        raise ValueError("a world needs at least 2 dimensions (one is popularity's)")
    # the genre/artist/track space; popularity takes one more axis
    d = min(shape.effective_dim, dim - 1) if shape.effective_dim > 0 else dim - 1

    # Genres (some bigger than others), artists in genres, tracks around their artist.
    sizes = _artist_sizes(rng["artists"], shape)
    n_artists = len(sizes)
    genre_weight = rng["genres"].dirichlet(np.full(shape.genres, shape.genre_concentration))
    artist_genre = rng["genres"].choice(shape.genres, size=n_artists, p=genre_weight)
    geometry = rng["geometry"]
    genre_centre = _random_directions(geometry, shape.genres, d, shape.genre_norm)
    artist_centre = genre_centre[artist_genre] + _random_directions(
        geometry, n_artists, d, shape.artist_norm
    )
    artist_of = np.repeat(np.arange(n_artists), sizes)
    # Tracks are shuffled so an artist's tracks are not consecutive ids.
    artist_of = artist_of[rng["tracks"].permutation(n)]
    emb = artist_centre[artist_of] + _random_directions(rng["tracks"], n, d, shape.track_norm)
    if shape.norm_spread != 1.0:  # pull each track's norm towards the mean: fewer hubs
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        mean = norms.mean()
        emb = emb * ((mean + shape.norm_spread * (norms - mean)) / norms)
    # Popularity: a latent mixing artist fame and track appeal, then Zipf over its ranks.
    artist_fame = rng["popularity"].standard_normal(n_artists)
    latent = shape.artist_pop_weight * artist_fame[artist_of] + rng["popularity"].standard_normal(n)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(-latent, kind="stable")] = np.arange(1, n + 1)
    pop = rank.astype(np.float64) ** -shape.zipf_exponent
    pop = np.round(pop / pop.max(), 8)

    # Popularity on an axis of its own: popular tracks share it, whatever their genre. (A random
    # direction inside the genre space would favour the genres it happens to point at, and with
    # them TopPop and Random's level: most of the spread between world seeds came from that.)
    mainstream = pop**shape.mainstream_pop_exponent * shape.mainstream_norm
    emb = np.hstack([emb, mainstream[:, None]])
    # rotate the rank-(d+1) world into `dim` dimensions (dot products unchanged)
    basis, _ = np.linalg.qr(geometry.standard_normal((dim, d + 1)))
    emb = emb @ basis.T

    names = rng["names"]
    artist_names = [f"{_name(names, 2)} {_name(names, 3)}" for _ in range(n_artists)]
    # Make names unique: the catalog identifies artists by name.
    artist_names = [f"{nm} #{i}" for i, nm in enumerate(artist_names)]
    titles = [_name(names, int(k)) for k in names.integers(2, 5, size=n)]

    users = _generate_users(rng["users"], shape, pop)
    return World(
        embeddings=emb.astype(np.float32),
        artist_names=[artist_names[a] for a in artist_of],
        titles=titles,
        genres=[_genre_name(g) for g in artist_genre[artist_of]],
        pop=pop,
        users=users,
    )


def _genre_name(index: int) -> str:
    """A readable name per genre: the list above, then numbered variants ("rock 2", ...)."""
    base = GENRES[index % len(GENRES)]
    return base if index < len(GENRES) else f"{base} {index // len(GENRES) + 1}"


def _generate_users(rng: np.random.Generator, shape: WorldShape, pop: np.ndarray) -> list[dict]:
    m, k = shape.users, min(shape.interests, len(pop))
    p = pop**shape.interest_pop_exponent
    p = p / p.sum()
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
