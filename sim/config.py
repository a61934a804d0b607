"""The simulator's configuration (`config/env.yml`), with the defaults below for missing keys."""

from __future__ import annotations

import os
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
    world_seed: int = 42
    world_shape: WorldShape = field(default_factory=WorldShape)
    user_model: UserModelParams = field(default_factory=UserModelParams)
    remote: RemoteConfig = field(default_factory=RemoteConfig)
    seed: int = 42

    def load_world(self) -> World:
        """The world in `world_dir`; generated there first (and said so) if it is not there."""
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
    """Defaults, then the YAML file (if given or if config/env.yml exists), then BOTIFY_URL."""
    path = Path(path) if path else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    raw: dict = {}
    if path is not None:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f) or {}
    unknown = sorted(set(raw) - {"world", "user_model", "remote", "seed"})
    if unknown:
        raise ValueError(f"{path}: unknown sections {unknown}")
    world = dict(raw.get("world") or {})
    world_dir = Path(world.pop("dir", "data/world"))
    world_seed = int(world.pop("seed", 42))
    remote = _pick(RemoteConfig, raw.get("remote"), f"{path}: remote")
    if os.environ.get("BOTIFY_URL"):
        remote.url = os.environ["BOTIFY_URL"]
    return SimConfig(
        world_dir=world_dir,
        world_seed=world_seed,
        world_shape=_pick(WorldShape, world, f"{path}: world"),
        user_model=_pick(UserModelParams, raw.get("user_model"), f"{path}: user_model"),
        remote=remote,
        seed=int(raw.get("seed", 42)),
    )
