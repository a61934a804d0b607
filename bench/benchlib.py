"""Helpers the benchmark scripts share: the world, random lists, experiments files, CPU counters."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from botify.store import connect
from botify.toplists import TopLists


def ensure_world(world: Path) -> None:
    if not (world / "tracks.json").is_file():
        print(f"generating the default world into {world}", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "sim.world", "--out", str(world), "--seed", "42"], check=True
        )


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def deploy_random_lists(redis_url: str, users: int, tracks: int, k: int = 100) -> str:
    rng = np.random.default_rng(0)
    client = connect(redis_url)
    lists = TopLists(client, "core")
    version, _ = lists.write(
        ((user, rng.choice(tracks, size=k, replace=False)) for user in range(users)),
        meta={"source": "bench_service random lists"},
    )
    lists.activate(version)
    client.close()
    return version


def group_cpu_seconds(pgids: list[int]) -> float:
    """utime + stime of every live process in these process groups (the replicas' masters+workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids:  # fields[2] = pgrp
            total += int(fields[11]) + int(fields[12])
    return total / tick


def experiments_file(path: Path, recommender: str) -> Path:
    """An experiments config routing every user to `recommender` (experiment BENCH, arm C)."""
    path.write_text(
        "route: BENCH\nexperiments:\n  - name: BENCH\n    arms:\n"
        f"      - {{name: C, recommender: {recommender}}}\n"
    )
    return path


def group_rss_bytes(pgids: list[int]) -> int:
    """Resident memory of every live process in these process groups."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) in pgids:
                total += int((entry / "statm").read_text().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total
