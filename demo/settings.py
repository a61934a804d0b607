"""The demo's settings: `config/demo.yml`, then its `quick` section (with `--quick`), then flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "demo.yml"

# Flags that override config keys: flag -> (dotted key, type, help).
OVERRIDES: dict[str, tuple[str, type, str]] = {
    "seed": ("seed", int, "the run's seed (every step derives its own)"),
    "tracks": ("world.tracks", int, "tracks in the generated world"),
    "users": ("world.users", int, "users in the generated world"),
    "dim": ("world.dim", int, "embedding dimensions of the world"),
    "world_seed": ("world.seed", int, "seed of the generated world"),
    "world": ("world.dir", str,
              "use this world folder (e.g. the course's data) instead of generating one"),
    "replicas": ("stack.replicas", int, "recommender replicas"),
    "nginx": ("stack.nginx", str, "auto|on|off"),
    "experiments": ("stack.experiments", str, "experiments YAML of the A/B days"),
    "collect_experiments": ("collect.experiments", str,
                            "experiments YAML of day 1 (the collection)"),
    "collect_episodes": ("collect.episodes", int, "day-1 sessions per simulator process"),
    "ab_episodes": ("ab.episodes", int, "sessions per simulator process of each A/B day"),
    "days": ("days", int, "A/B days; before each, CORE retrains on everything logged so far"),
    "transport": ("sim.transport", str, "batch (one call per shard and round) | request"),
    "ceiling_sessions": ("ceiling.sessions", int,
                         "sessions per process the oracle and random run for the ceiling (0: none)"),
    "epochs": ("train.epochs", int, "CORE epochs"),
    "variant": ("train.variant", str, "CORE variant: ave|trm"),
    "negatives": ("train.negatives", int,
                  "CORE's sampled softmax: negatives per batch (0: the full softmax)"),
    "min_time": ("train.min_time", float, "a play counts as liked above this fraction"),
    "experiment": ("ab.experiment", str, "experiment to analyse"),
    "alpha": ("ab.alpha", float, "significance level"),
}  # fmt: skip


def load_config(path: Path, overrides: dict[str, Any], quick: bool = False) -> dict:
    """The YAML config, then (with `quick`) its `quick` section of dotted keys, then flags."""
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    quick_sizes = config.pop("quick", {}) or {}
    if quick:
        overrides = {**quick_sizes, **{k: v for k, v in overrides.items() if v is not None}}
    for dotted, value in overrides.items():
        if value is None:
            continue
        node = config
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return config
