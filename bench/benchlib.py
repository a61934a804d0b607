"""Helpers the benchmark scripts share: the world, random lists, experiments files, CPU counters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from botify.redis_link import client_for
from botify.settings import Settings
from botify.toplists import TopLists


def ensure_world(world: Path) -> None:
    if not (world / "tracks.json").is_file():
        print(f"generating the default world into {world}", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "sim.world", "--out", str(world), "--seed", "42"], check=True
        )


def world_size(world: Path) -> tuple[int, int]:
    """(users, tracks) of the world, generating the default one first when it is missing."""
    ensure_world(world)
    return count_lines(world / "users.json"), count_lines(world / "tracks.json")


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def deploy_random_lists(redis_url: str, users: int, tracks: int, k: int = 100) -> str:
    rng = np.random.default_rng(0)
    settings = Settings.load({"redis_url": redis_url})  # the replicas' key prefix
    client = client_for(settings)
    lists = TopLists(client, "core", settings.key_prefix)
    version, _ = lists.write(
        ((user, rng.choice(tracks, size=k, replace=False)) for user in range(users)),
        meta={"source": "bench_service random lists"},
    )
    lists.activate(version)
    client.close()
    return version


def _group_processes(pgids: list[int]):
    """(/proc/<pid> folder, its stat fields after the command name) of every live process in
    these process groups (the replicas' masters and workers)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[2]) in pgids:  # fields[2] = pgrp
            yield entry, fields


def group_cpu_seconds(pgids: list[int]) -> float:
    """utime + stime of every live process in these process groups."""
    ticks = sum(int(f[11]) + int(f[12]) for _, f in _group_processes(pgids))
    return ticks / os.sysconf("SC_CLK_TCK")


def experiments_file(path: Path, recommender: str) -> Path:
    """An experiments config routing every user to `recommender` (experiment BENCH, arm C)."""
    path.write_text(
        "route: BENCH\nexperiments:\n  - name: BENCH\n    arms:\n"
        f"      - {{name: C, recommender: {recommender}}}\n"
    )
    return path


def group_rss_bytes(pgids: list[int]) -> int:
    """Resident memory of every live process in these process groups."""
    total = 0
    for entry, _ in _group_processes(pgids):
        try:
            total += int((entry / "statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
    return total * os.sysconf("SC_PAGE_SIZE")
