"""A/B experiments from a YAML file, and the salted hash that puts a user into an arm.

Format (arms in bucket order; `route` names the experiment whose arm picks the recommender):

    route: AB
    experiments:
      - name: AB
        coverage: 1.0            # optional: the share of users in the experiment (default 1)
        arms:
          - {name: C, recommender: sticky_artist, weight: 9}   # weight: optional, default 1
          - {name: T1, recommender: sorted_indexed, params: {lists: core}, weight: 1}

Assignment, as GrowthBook does it: the salted hash puts each user at a point of [0, 1) (`place`),
the arms' weights cut [0, 1) into consecutive ranges, and with coverage c each arm keeps the first
c of its range (`Experiment.ranges`); a user whose point falls in no range is not in the
experiment. So a changed coverage never moves a user from one arm to another, and a changed
weight moves only the users between the old and the new boundary.

The point is ``(h mod k + (h div k) / M) / k`` with ``h = murmur3_32(str(user),
seed=murmur3_32(name))`` (unsigned, mmh3), k arms and M = ceil(2**32 / k): its first digit in base
k is today's ``h mod k``, so equal weights with full coverage give exactly the assignment of
before (`bucket`), and within an arm's share the position is uniform. Points and ranges are
compared as integers (``place * k * M``), so no rounding can move a user.

A user outside the coverage of the routing experiment is served its first arm (the control: the
default experience) and its events log no arm of that experiment, so the A/B report never counts
them (GrowthBook: not in the experiment, the default value, no exposure).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import mmh3
import numpy as np
import yaml

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
HASH_SPACE = 2**32  # murmur3_32 values


def _hash(user: int, experiment: str) -> int:
    salt = mmh3.hash(experiment, signed=False)
    return mmh3.hash(str(int(user)), seed=salt, signed=False)


def bucket(user: int, experiment: str, arms: int) -> int:
    """Today's equal split: the arm index ``murmur3_32(str(user), seed=murmur3_32(name)) mod arms``."""
    return _hash(user, experiment) % arms


def _slots(arms: int) -> int:
    """M: how many values of ``h div k`` there are; the point's resolution is 1 / (k * M)."""
    return -(-HASH_SPACE // arms)


def place(user: int, experiment: str, arms: int) -> int:
    """The user's point of [0, 1) as an integer in [0, arms * M) (see the module's docstring)."""
    h = _hash(user, experiment)
    return (h % arms) * _slots(arms) + h // arms


def places(users: np.ndarray, experiment: str, arms: int) -> np.ndarray:
    """`place` of many users at once (int64; for analysis and benchmarks)."""
    salt = mmh3.hash(experiment, signed=False)
    h = np.array([mmh3.hash(str(int(u)), seed=salt, signed=False) for u in users], np.int64)
    return (h % arms) * _slots(arms) + h // arms


@dataclass(frozen=True)
class Arm:
    name: str
    recommender: str
    params: Mapping[str, Any] = field(default_factory=dict)
    weight: float = 1.0  # relative share of the covered users (normalised over the arms)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "recommender": self.recommender,
            "params": dict(self.params),
            "weight": self.weight,
        }


@dataclass(frozen=True)
class Experiment:
    name: str
    arms: tuple[Arm, ...]
    coverage: float = 1.0  # share of users in the experiment
    # integer [start, end) of each arm's range, in units of 1 / (k * M); set in __post_init__
    ranges: tuple[tuple[int, int], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.arms:
            raise ValueError(f"experiment {self.name}: no arms")
        for arm in self.arms:
            if not (math.isfinite(arm.weight) and arm.weight >= 0):
                raise ValueError(f"experiment {self.name}: arm {arm.name} weight must be >= 0")
        if not any(arm.weight > 0 for arm in self.arms):
            raise ValueError(f"experiment {self.name}: every arm has weight 0")
        if not (math.isfinite(self.coverage) and 0 < self.coverage <= 1):
            raise ValueError(f"experiment {self.name}: coverage must be in (0, 1]")
        scale = len(self.arms) * _slots(len(self.arms))
        weights = [Fraction(arm.weight) for arm in self.arms]  # exact: no rounding at boundaries
        total, coverage = sum(weights), Fraction(self.coverage)
        ranges, cumulative = [], Fraction(0)
        for weight in weights:
            start = math.floor(cumulative / total * scale)
            ranges.append((start, start + math.floor(coverage * weight / total * scale)))
            cumulative += weight
        object.__setattr__(self, "ranges", tuple(ranges))

    @property
    def weights(self) -> dict[str, float]:
        """Each arm's share of the covered users (sums to 1)."""
        total = sum(arm.weight for arm in self.arms)
        return {arm.name: arm.weight / total for arm in self.arms}

    @property
    def equal_split(self) -> bool:
        return self.coverage == 1 and len({arm.weight for arm in self.arms}) == 1

    def arm_of(self, user: int) -> Arm | None:
        """The user's arm, or None when the user is outside the coverage (not in the experiment)."""
        if self.equal_split:  # the same answer as the ranges below (a test pins it), cheaper
            return self.arms[bucket(user, self.name, len(self.arms))]
        point = place(user, self.name, len(self.arms))
        index = bisect_right([start for start, _ in self.ranges], point) - 1
        start, end = self.ranges[index]
        return self.arms[index] if start <= point < end else None

    def arm_indices(self, users: np.ndarray) -> np.ndarray:
        """`arm_of` of many users at once: each one's arm index, -1 outside the coverage."""
        points = places(np.asarray(users), self.name, len(self.arms))
        starts = np.array([start for start, _ in self.ranges], dtype=np.int64)
        ends = np.array([end for _, end in self.ranges], dtype=np.int64)
        index = np.searchsorted(starts, points, side="right") - 1
        return np.where(points < ends[index], index, -1)

    def assign(self, user: int) -> Arm:
        """The arm that serves the user: its own, or the first arm (control) outside the coverage."""
        arm = self.arm_of(user)
        return self.arms[0] if arm is None else arm

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "coverage": self.coverage,
            "arms": [a.to_dict() for a in self.arms],
        }


@dataclass(frozen=True)
class Experiments:
    experiments: tuple[Experiment, ...]
    route: str

    @property
    def routing(self) -> Experiment:
        return next(e for e in self.experiments if e.name == self.route)

    @property
    def default_arm(self) -> str:
        """The routing experiment's arm that serves users outside its coverage (its first)."""
        return self.routing.arms[0].name

    def assign(self, user: int) -> dict[str, str]:
        """The user's arm in every experiment that covers the user (what every event logs)."""
        arms = {e.name: e.arm_of(user) for e in self.experiments}
        return {name: arm.name for name, arm in arms.items() if arm is not None}

    def experiment(self, name: str) -> Experiment:
        found = next((e for e in self.experiments if e.name == name), None)
        if found is None:
            raise KeyError(f"no experiment {name!r} in the config")
        return found

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
                Arm(
                    str(a["name"]),
                    str(a["recommender"]),
                    dict(a.get("params") or {}),
                    _number(a.get("weight", 1.0), f"experiment {name}: arm weight"),
                )
                for a in raw.get("arms") or []
            )
            if not arms:
                raise ValueError(f"experiment {name}: no arms")
            if len({a.name for a in arms}) != len(arms):
                raise ValueError(f"experiment {name}: duplicate arm names")
            coverage = _number(raw.get("coverage", 1.0), f"experiment {name}: coverage")
            experiments.append(Experiment(name, arms, coverage))
        if len({e.name for e in experiments}) != len(experiments):
            raise ValueError("experiments config: duplicate experiment names")
        route = str(data.get("route") or (experiments[0].name if experiments else ""))
        if route not in {e.name for e in experiments}:
            raise ValueError(f"experiments config: route {route!r} is not a listed experiment")
        return cls(tuple(experiments), route)

    @classmethod
    def from_file(cls, path: str | Path) -> Experiments:
        return cls.from_dict(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number, got {value!r}")
    return float(value)
