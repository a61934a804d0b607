"""Fixtures for the stack tests: a tiny world and experiments files written per session."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from ops.stack import find_nginx

N_TRACKS = 300
N_ARTISTS = 30


def needs_nginx(test):
    """Mark `nginx` (pyproject's marker) and skip with the reason when the binary is missing."""
    skip = pytest.mark.skipif(
        find_nginx() is None,
        reason="nginx is not installed (run tools/system-packages.sh as root: apt-get install nginx)",
    )
    return pytest.mark.nginx(skip(test))


@pytest.fixture(scope="session")
def world_dir(tmp_path_factory) -> Path:
    """tracks.json of 300 tracks by 30 artists (all the service reads from a world)."""
    world = tmp_path_factory.mktemp("world")
    with open(world / "tracks.json", "w", encoding="utf-8") as f:
        for track in range(N_TRACKS):
            record = {
                "track": track,
                "artist": f"artist-{track % N_ARTISTS}",
                "title": f"title-{track}",
                "genre": "rock",
                "pop": round(1.0 / (track + 1), 6),
            }
            f.write(json.dumps(record) + "\n")
    return world


@pytest.fixture(scope="session")
def sticky_experiments(tmp_path_factory) -> Path:
    """One routing experiment, one catalog-only arm: ready without any lists in Redis."""
    path = tmp_path_factory.mktemp("config") / "experiments.yml"
    path.write_text(
        "route: ONE\n"
        "experiments:\n"
        "  - name: ONE\n"
        "    arms:\n"
        "      - {name: C, recommender: sticky_artist}\n"
    )
    return path


def read_events(log_root: Path) -> list[dict]:
    """Every event line under a log root (rotated files included); each must be valid JSON."""
    events = []
    for path in sorted(log_root.rglob("events-*.jsonl*")):
        for line in path.read_text(encoding="utf-8").splitlines():
            events.append(json.loads(line))
    return events


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0): it is dead for our purpose.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def descendants(pid: int) -> set[int]:
    """All processes below `pid` (Linux /proc), found by walking parent links."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def wait_dead(pids, timeout: float = 10.0) -> set[int]:
    """The pids still alive after `timeout` (killed with SIGKILL so no test leaves them behind)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = {pid for pid in pids if alive(pid)}
        if not left:
            return set()
        time.sleep(0.05)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left
