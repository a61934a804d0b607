"""The simulator's configuration (`config/env.yml`), with the defaults below for missing keys.

The course's own `env.yml` is accepted too (`load_config` tells them apart by their sections):

    track_catalog_config:      track_meta_path (or tracks_path) -> tracks.json,
                               track_embeddings_path (or tracks_embeddings_path) -> tracks.npy
    user_catalog_config:       user_catalog_path -> users.json; default_<field> -> user_model.<field>
    remote_recommender_config: host, port -> remote.url = http://host:port

Its paths are relative to the working directory, as in the course. Keys that only drive the
course's data generator (COURSE_GENERATOR_KEYS) are ignored; any other key is an error.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from sim.user_model import UserModelParams
from sim.world import World, WorldShape, generate

DEFAULT_CONFIG = Path("config/env.yml")
WORLD_FILES = ("tracks.json", "tracks.npy", "users.json")


@dataclass
class RemoteConfig:
    url: str = "http://127.0.0.1:8000"
    timeout: float = 10.0
    retries: int = 5
    backoff: float = 0.1


@dataclass
class SimConfig:
    world_dir: Path = Path("data/world")
    # The course's config names each world file (tracks.json, tracks.npy, users.json, in that
    # order); they are used while world_dir is still their folder (`--world DIR` overrides them).
    world_files: tuple[Path, Path, Path] | None = None
    world_seed: int = 42
    world_shape: WorldShape = field(default_factory=WorldShape)
    user_model: UserModelParams = field(default_factory=UserModelParams)
    remote: RemoteConfig = field(default_factory=RemoteConfig)
    seed: int = 42

    def load_world(self) -> World:
        """The world in `world_dir`; generated there first (and said so) if it is not there."""
        if self.world_files and Path(self.world_dir) == self.world_files[0].parent:
            missing = [str(path) for path in self.world_files if not path.is_file()]
            if missing:
                raise FileNotFoundError(f"world files named by the config not found: {missing}")
            return World.load_files(*self.world_files)
        if not all((self.world_dir / name).exists() for name in WORLD_FILES):
            shape = self.world_shape
            print(
                f"generating world seed={self.world_seed} ({shape.tracks} tracks, "
                f"{shape.users} users, dim {shape.dim}) into {self.world_dir}",
                file=sys.stderr,
            )
            generate(self.world_seed, shape).save(self.world_dir)
        return World.load(self.world_dir)


def _pick(cls, mapping: dict | None, where: str):
    mapping = dict(mapping or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(mapping) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    defaults = cls()
    return cls(**{k: type(getattr(defaults, k))(v) for k, v in mapping.items()})


def load_config(path: str | Path | None = None) -> SimConfig:
    """Defaults, then the YAML file (if given or if config/env.yml exists). `python -m sim.run`
    puts its --url (or BOTIFY_URL) on top."""
    path = Path(path) if path else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    raw: dict = {}
    if path is not None:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of sections")
    if set(raw) & set(COURSE_SECTIONS):
        config = _course_config(raw, path)
    else:
        config = _botify_config(raw, path)
    return config


def _botify_config(raw: dict, path: Path | None) -> SimConfig:
    unknown = sorted(set(raw) - {"world", "user_model", "remote", "seed"})
    if unknown:
        raise ValueError(
            f"{path}: unknown sections {unknown}; expected Botify's (world, user_model, remote, "
            f"seed) or the course's ({', '.join(COURSE_SECTIONS)})"
        )
    world = dict(raw.get("world") or {})
    world_dir = Path(world.pop("dir", "data/world"))
    world_seed = int(world.pop("seed", 42))
    return SimConfig(
        world_dir=world_dir,
        world_seed=world_seed,
        world_shape=_pick(WorldShape, world, f"{path}: world"),
        user_model=_pick(UserModelParams, raw.get("user_model"), f"{path}: user_model"),
        remote=_pick(RemoteConfig, raw.get("remote"), f"{path}: remote"),
        seed=int(raw.get("seed", 42)),
    )


# The course's env.yml (its sim/envs/config.py, RecEnvConfig): section -> key -> where it goes.
COURSE_SECTIONS = {
    "track_catalog_config": {
        "track_meta_path": "tracks.json",
        "tracks_path": "tracks.json",  # the 2026 edition's spelling
        "track_embeddings_path": "tracks.npy",
        "tracks_embeddings_path": "tracks.npy",
    },
    "user_catalog_config": {
        "user_catalog_path": "users.json",
        "default_interest_neighbours": "interest_neighbours",
        "default_consume_bias": "consume_bias",
        "default_consume_sharpness": "consume_sharpness",
        "default_session_budget": "session_budget",
        "default_artist_discount_gamma": "artist_discount_gamma",
    },
    "remote_recommender_config": {"host": "host", "port": "port"},
}
# What only the course's data generator reads (the 2026 edition): nothing a run needs.
COURSE_GENERATOR_KEYS = {
    "artists_config": None,  # the whole section
    "track_catalog_config": {
        "tracks_data_model", "tracks_per_artist", "tracks_raw_path", "tracks_embeddings_model"},
    "user_catalog_config": {"model", "users"},
}  # fmt: skip


def _course_config(raw: dict, path: Path | None) -> SimConfig:
    where = f"{path} (the course's env.yml format)"
    extra = sorted(set(raw) - set(COURSE_SECTIONS) - set(COURSE_GENERATOR_KEYS))
    if extra:
        raise ValueError(
            f"{where}: unknown sections {extra}; a course config has "
            f"{', '.join(COURSE_SECTIONS)} (Botify's own sections cannot be mixed in)"
        )
    mapped: dict[str, object] = {}
    for section, keys in COURSE_SECTIONS.items():
        values = raw.get(section)
        if not isinstance(values, dict):
            raise ValueError(f"{where}: section {section} is missing or not a mapping")
        ignored = COURSE_GENERATOR_KEYS.get(section) or set()
        unknown = sorted(set(values) - set(keys) - ignored)
        if unknown:
            raise ValueError(f"{where}: {section}: unknown keys {unknown}; known: {sorted(keys)}")
        for key, value in values.items():
            if key in keys:
                mapped[keys[key]] = value
    needed = ["tracks.json", "tracks.npy", "users.json", "host", "port"]
    missing = [name for name in needed if name not in mapped]
    if missing:
        raise ValueError(f"{where}: missing {missing}")
    files = (
        Path(str(mapped["tracks.json"])),
        Path(str(mapped["tracks.npy"])),
        Path(str(mapped["users.json"])),
    )
    defaults = {k: v for k, v in mapped.items() if k not in needed}
    return SimConfig(
        world_dir=files[0].parent,
        world_files=files,
        user_model=_pick(UserModelParams, defaults, f"{where}: user_catalog_config"),
        remote=RemoteConfig(url=f"http://{mapped['host']}:{int(str(mapped['port']))}"),
    )
