"""Synthetic event logs with known effects, for the exporter's and the report's tests and benches.

The lines are encoded by the event contract (`botify.event_schema`), users get their arm from the
service's hash (`botify.experiments.bucket`), and files are named and rotated as the service does
(`botify.logfiles`): ``<root>/recommender-<i>/events-<pid>.jsonl`` plus rotated parts ``.1``,
``.2``, ... (``.1`` the oldest, the live file the newest). Per-track listening time is
``uniform(0, 0.5) * effect[arm]`` (effects <= 2 keep it inside [0, 1]), so the true relative
effect of an arm on ``time`` and ``mean_time_per_session`` is ``effect - 1``; sessions and tracks
do not depend on the arm. ``fallbacks`` sets, per arm, the share of ``next`` events logged with
``"fallback": true``; ``propensities`` the propensity each arm's ``next`` events log (an arm
not named logs none, as logs written before the field).

    python -m script.fake_logs --out DIR --users 10000 --events 3000000 --seed 1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np
import pandas as pd

from botify import logfiles
from botify.event_schema import Event, encode
from botify.experiments import bucket

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@dataclass
class FakeLogSpec:
    users: int = 1000
    experiment: str = "AB"
    arms: tuple[str, ...] = ("C", "T1")
    effects: dict[str, float] = field(default_factory=dict)  # arm -> factor on per-track time
    weights: tuple[float, ...] | None = None  # None: the service's salted hash; else a skew
    other_experiments: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fallbacks: dict[str, float] = field(default_factory=dict)  # arm -> share of `next` events
    propensities: dict[str, float] = field(default_factory=dict)  # arm -> logged on `next`
    sessions_mean: float = 3.0
    tracks_mean: float = 8.0
    replicas: int = 2
    workers_per_replica: int = 2
    seed: int = 0


def assign(users: np.ndarray, experiment: str, arms: tuple[str, ...]) -> np.ndarray:
    """Each user's arm, by the service's own hash."""
    buckets = [bucket(int(user), experiment, len(arms)) for user in users]
    return np.asarray(arms, dtype=object)[buckets]


def fake_events(spec: FakeLogSpec) -> pd.DataFrame:
    """One row per event in timestamp order, with an ``arm`` column for ``spec.experiment``."""
    rng = np.random.default_rng(spec.seed)
    users = np.arange(spec.users)
    if spec.weights is None:
        arm_of_user = assign(users, spec.experiment, spec.arms)
    else:
        p = np.asarray(spec.weights, dtype=float) / sum(spec.weights)
        arm_of_user = np.asarray(spec.arms, dtype=object)[
            rng.choice(len(spec.arms), spec.users, p=p)
        ]

    sessions = 1 + rng.poisson(spec.sessions_mean - 1, spec.users)
    session_user = np.repeat(users, sessions)
    tracks = 1 + rng.poisson(spec.tracks_mean - 1, len(session_user))
    event_session = np.repeat(np.arange(len(session_user)), tracks)
    user = session_user[event_session]
    arm = arm_of_user[user]
    factor = np.ones(len(user))
    for name, effect in spec.effects.items():
        factor[arm == name] = effect

    # sessions of one user follow each other; users interleave over about a day
    first = np.r_[0, np.cumsum(sessions)[:-1]]
    gaps = rng.integers(60_000, 3_600_000, len(session_user))
    gaps[first] = rng.integers(0, 86_400_000, spec.users)
    session_start = START_MS + _cumsum_within(gaps, session_user)
    position = np.arange(len(user)) - np.repeat(np.r_[0, np.cumsum(tracks)[:-1]], tracks)
    timestamp = session_start[event_session] + position * 3_000 + rng.integers(0, 1000, len(user))
    is_last = position == tracks[event_session] - 1

    events = pd.DataFrame(
        {
            "message": np.where(is_last, "last", "next"),
            "timestamp": timestamp,
            "user": user,
            "track": rng.integers(0, 50_000, len(user)),
            "time": np.round(rng.uniform(0.0, 0.5, len(user)) * factor, 4),
            "latency": np.round(rng.exponential(0.002, len(user)), 6),
            "recommendation": np.where(is_last, -1, rng.integers(0, 50_000, len(user))),
            "arm": arm,
            "worker": rng.integers(0, spec.replicas * spec.workers_per_replica, len(user)),
        }
    )
    for name, other_arms in spec.other_experiments.items():
        events["exp:" + name] = assign(users, name, other_arms)[user]
    if spec.fallbacks:  # drawn last, so the other columns do not depend on it
        rate = np.array([spec.fallbacks.get(a, 0.0) for a in arm])
        events["fallback"] = (rng.uniform(size=len(user)) < rate) & ~is_last
    if spec.propensities:  # no draw: the other columns stay as without it
        logged = np.array([spec.propensities.get(a, np.nan) for a in arm])
        events["propensity"] = np.where(is_last, np.nan, logged)
    return events.sort_values("timestamp", kind="stable", ignore_index=True)


def _cumsum_within(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each new group (groups are contiguous)."""
    total = np.cumsum(values)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    offset = np.repeat(total[starts] - values[starts], np.diff(np.r_[starts, len(values)]))
    return total - offset


def to_events(events: pd.DataFrame, experiment: str, replica: str = "recommender-1") -> list[Event]:
    """The rows of ``events`` as the service's `Event`s (one per row, in row order)."""
    others = [c for c in events.columns if c.startswith("exp:")]
    arms = [events["arm"].tolist()] + [events[c].tolist() for c in others]
    names = [experiment] + [c.removeprefix("exp:") for c in others]
    fallback = events["fallback"].tolist() if "fallback" in events else [False] * len(events)
    propensity = (
        [None if p != p else p for p in events["propensity"].tolist()]
        if "propensity" in events
        else [None] * len(events)
    )
    columns = ("message", "timestamp", "user", "track", "time", "latency", "recommendation")
    values = [events[c].tolist() for c in columns]
    return [
        Event(
            message=message,
            timestamp=timestamp,
            user=user,
            track=track,
            time=listened,
            latency=latency,
            recommendation=None if recommendation < 0 else recommendation,
            experiments={name: arm[i] for name, arm in zip(names, arms, strict=True)},
            replica=replica,
            fallback=fallback[i],
            propensity=propensity[i],
        )
        for i, (message, timestamp, user, track, listened, latency, recommendation) in enumerate(
            zip(*values, strict=True)
        )
    ]


def event_lines(
    events: pd.DataFrame, experiment: str, replica: str = "recommender-1"
) -> list[bytes]:
    """The log lines of ``events`` as the service writes them (one per event, newline included)."""
    return [encode(event) for event in to_events(events, experiment, replica)]


def write_logs(
    events: pd.DataFrame,
    root: Path,
    experiment: str,
    workers_per_replica: int = 2,
    lines_per_file: int | None = None,
) -> list[Path]:
    """Write the events as the service's workers would; return the files written."""
    written = []
    for worker, part in events.groupby("worker", sort=True):
        replica = f"recommender-{worker // workers_per_replica + 1}"
        folder = root / replica
        folder.mkdir(parents=True, exist_ok=True)
        lines = event_lines(part, experiment, replica)
        size = lines_per_file or max(len(lines), 1)
        pieces = [lines[i : i + size] for i in range(0, len(lines), size)]
        live = folder / logfiles.live_name(1000 + worker)
        # oldest piece first: .1, .2, ..., and the newest is the live file
        names = [logfiles.rotated_name(live.name, k) for k in range(1, len(pieces))] + [live.name]
        for name, piece in zip(names, pieces, strict=True):
            path = folder / name
            path.write_bytes(b"".join(piece))
            written.append(path)
    return written


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--users", type=click.IntRange(1), default=10_000, show_default=True)
@click.option("--events", type=click.IntRange(1), default=None, help="about this many events")
@click.option("--tracks-mean", type=float, default=8.0, show_default=True)
@click.option("--lines-per-file", type=click.IntRange(1), default=200_000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def cli(out: Path, users: int, events: int | None, tracks_mean: float, lines_per_file: int,
        seed: int) -> None:  # fmt: skip
    """Write synthetic service logs of a four-arm A/B test with known effects."""
    sessions_mean = 3.0
    if events:
        sessions_mean = max(1.0, events / users / tracks_mean)
    spec = FakeLogSpec(
        users=users,
        arms=("C", "T1", "T2", "T3"),
        effects={"T1": 1.4, "T2": 1.4, "T3": 1.04},
        sessions_mean=sessions_mean,
        tracks_mean=tracks_mean,
        seed=seed,
    )
    frame = fake_events(spec)
    files = write_logs(frame, out, spec.experiment, lines_per_file=lines_per_file)
    click.echo(f"{len(frame):,} events in {len(files)} files under {out}")


if __name__ == "__main__":
    cli(prog_name="python -m script.fake_logs")
