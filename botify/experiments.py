"""A/B experiments from a YAML file, and the salted hash that puts a user into an arm.

Format (arms in bucket order; `route` names the experiment whose arm picks the recommender):

    route: AB
    experiments:
      - name: AB
        arms:
          - {name: C, recommender: sticky_artist}
          - {name: T1, recommender: sorted_indexed, params: {lists: core}}

Assignment: `arm = murmur3_32(str(user), seed=murmur3_32(name)) mod len(arms)`, unsigned
murmur3 (mmh3), so it is deterministic, salted per experiment and uniform.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mmh3
import yaml

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def bucket(user: int, experiment: str, arms: int) -> int:
    salt = mmh3.hash(experiment, signed=False)
    return mmh3.hash(str(int(user)), seed=salt, signed=False) % arms


@dataclass(frozen=True)
class Arm:
    name: str
    recommender: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "recommender": self.recommender, "params": dict(self.params)}


@dataclass(frozen=True)
class Experiment:
    name: str
    arms: tuple[Arm, ...]

    def assign(self, user: int) -> Arm:
        return self.arms[bucket(user, self.name, len(self.arms))]

    def to_dict(self) -> dict:
        return {"name": self.name, "arms": [a.to_dict() for a in self.arms]}


@dataclass(frozen=True)
class Experiments:
    experiments: tuple[Experiment, ...]
    route: str

    @property
    def routing(self) -> Experiment:
        return next(e for e in self.experiments if e.name == self.route)

    def assign(self, user: int) -> dict[str, str]:
        """The user's arm name in every experiment (what every event logs)."""
        return {e.name: e.assign(user).name for e in self.experiments}

    def to_dict(self) -> dict:
        return {"route": self.route, "experiments": [e.to_dict() for e in self.experiments]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Experiments:
        if not isinstance(data, Mapping) or not isinstance(data.get("experiments"), list):
            raise ValueError("experiments config: expected a mapping with an `experiments` list")
        experiments = []
        for raw in data["experiments"]:
            name = str(raw.get("name", ""))
            if not _NAME.match(name):
                raise ValueError(f"experiments config: bad experiment name {name!r}")
            arms = tuple(
                Arm(str(a["name"]), str(a["recommender"]), dict(a.get("params") or {}))
                for a in raw.get("arms") or []
            )
            if not arms:
                raise ValueError(f"experiment {name}: no arms")
            if len({a.name for a in arms}) != len(arms):
                raise ValueError(f"experiment {name}: duplicate arm names")
            experiments.append(Experiment(name, arms))
        if len({e.name for e in experiments}) != len(experiments):
            raise ValueError("experiments config: duplicate experiment names")
        route = str(data.get("route") or (experiments[0].name if experiments else ""))
        if route not in {e.name for e in experiments}:
            raise ValueError(f"experiments config: route {route!r} is not a listed experiment")
        return cls(tuple(experiments), route)

    @classmethod
    def from_file(cls, path: str | Path) -> Experiments:
        return cls.from_dict(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
