"""In-process pools of whole simulated sessions through the service's own classes on in-memory
state, shared by the benches that compare arms on the same sessions (`bench_ab_truth.py`,
`bench_interleave.py`), and the small CORE they train on a logged pre-period.

Sessions are keyed by their index within a run key (`sim.batch.run_key`), so session i has the
same user, first track and listener draws under every arm, and per-user state ends with each
session: a session's outcome under an arm is what that user would have had under it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

ARMS = {  # the demo's arms (config/experiments.yml)
    "C": "sticky_artist",
    "T1": "sorted_indexed",
    "T2": "cooler_indexed",
    "T3": "indexed",
    "T4": "session_core",
}
PRE, POOL = 1, 2  # run keys: the pre-period and the pools' sessions

WORLD: dict = {}  # set before the pool workers fork: world, population, seed, lists, model
# Arms beyond ARMS, by name: (recommender, params), e.g. an interleaving arm; set before forking.
EXTRA_ARMS: dict[str, tuple[str, dict]] = {}
# Arms that are no service arm, by name: share -> a `sim.batch` policy; set before forking.
POLICIES: dict[str, Callable[[float], Any]] = {}


def load_world(folder: Path, seed: int):
    """The world in `folder` (the default one generated there when missing) and its listeners,
    set in WORLD for the pool workers, every session's anchor warmed once. (world, population)"""
    from benchlib import ensure_world

    from sim.config import load_config
    from sim.user_model import Population
    from sim.world import World

    ensure_world(folder)
    world = World.load(folder)
    population = Population(world, load_config(None).user_model)
    WORLD.update(world=world, population=population, seed=seed, lists=None, model=None)
    population.index.warm(np.unique(population.interests))
    return world, population


def arm_recommender(arm: str) -> tuple[str, dict]:
    """(recommender, params) of a named arm (ARMS: the recommender's default params)."""
    return EXTRA_ARMS[arm] if arm in EXTRA_ARMS else (ARMS[arm], {})


def service_policy(arm: str, log_dir: Path | None = None):
    """The service's own classes in-process, every user routed to `arm`'s recommender."""
    from sim.transport import InProcess, ServicePolicy

    recommender, params = arm_recommender(arm)
    spec = json.dumps([recommender, params])
    lists = {"core": WORLD["lists"]} if recommender != "sticky_artist" else None
    models = {"core": WORLD["model"]} if "session_core" in spec else None
    return ServicePolicy(InProcess.build(
        WORLD["world"].catalog, recommender, lists=lists, models=models, log_dir=log_dir, **params
    ))  # fmt: skip


def simulate(
    arm: str,
    sessions: int,
    key: int,
    log_dir: Path | None = None,
    share: float = 0.0,
    progress: bool = False,
) -> dict:
    """`sessions` sessions of the run `key` served by `arm` (one of `POLICIES`: built with
    `share`), in-process, logged into `log_dir` when given (a progress bar with `progress`); per
    session (in index order) its user, time and tracks as the service's log counts them (the
    first track too)."""
    from sim.batch import BatchSimulator, run_key

    custom = POLICIES.get(arm)
    policy = custom(share) if custom is not None else service_policy(arm, log_dir)
    with tqdm(total=sessions, desc=f"sessions of {arm}", file=sys.stderr,
              disable=not progress) as bar:  # fmt: skip
        run = BatchSimulator(WORLD["population"], run_key(WORLD["seed"], key), progress=bar.update)
        result = run.run(policy, sessions)
    if log_dir is not None:
        policy.transport.service.events.close()
    result = result.in_order()
    return {
        "user": result.user.astype(np.int64),
        "time": result.time + 1.0,  # the first track's event (time 1.0) counts, as the report's
        "tracks": (result.tracks + 1).astype(np.float64),
    }


def _pool_job(job: tuple) -> tuple[str, int, dict, float]:
    arm, sessions, key, share, *log_dir = job
    started = time.perf_counter()
    pool = simulate(arm, sessions, key, log_dir=(log_dir or [None])[0], share=share)
    return arm, key, pool, time.perf_counter() - started


def run_pools(jobs: list[tuple], processes: int) -> dict[str, dict]:
    """The jobs (arm, sessions, run key, share[, log dir]) over forked workers (they share the
    warmed world); each arm's runs joined in key order, whichever finished first, so a pool is
    the same every time."""
    parts: dict[str, list[tuple[int, dict]]] = {}
    context = multiprocessing.get_context("fork")
    bar = tqdm(total=sum(job[1] for job in jobs), desc="pools (sessions)", file=sys.stderr)
    with context.Pool(processes) as workers, bar:
        for arm, key, pool, seconds in workers.imap_unordered(_pool_job, jobs):
            parts.setdefault(arm, []).append((key, pool))
            bar.update(len(pool["user"]))
            bar.write(f"  pool {arm}: {len(pool['user']):,} sessions in {seconds:.0f} s")
    return {
        arm: {k: np.concatenate([p[k] for _, p in sorted(runs, key=lambda r: r[0])])
              for k in runs[0][1]}
        for arm, runs in parts.items()
    }  # fmt: skip


def train_source(pre_logs: Path, work: Path, epochs: int) -> tuple[Path, Path]:
    """The demo's training steps on the pre-period's logs: lists and item embeddings."""
    from script.export import export

    export([pre_logs], work / "events")
    python = [sys.executable, "-m", "trainer"]
    steps = (
        ["prepare", "--data", work / "events", "--out", work / "dataset"],
        ["train", "--dataset", work / "dataset", "--out", work / "model", "--epochs", epochs,
         "--no-progress"],
        ["recommend", "--model", work / "model", "--out", work / "recs.jsonl"],
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    for step in steps:
        done = subprocess.run([*python, *map(str, step)], env=env, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"trainer {step[0]} failed:\n{done.stdout}\n{done.stderr}")
    metrics = json.loads((work / "model" / "metrics.json").read_text())
    core = metrics["test"]["CORE"]
    print(f"  CORE on the pre-period's logs: held-out Recall@10 {core['recall@10']}, NDCG@10 "
          f"{core['ndcg@10']}", flush=True)  # fmt: skip
    return work / "recs.jsonl", work / "model" / "item_embeddings.npz"


def user_values(users: np.ndarray, values: np.ndarray, n_users: int) -> tuple[np.ndarray, ...]:
    """Per user with at least one session: (user ids, mean of the sessions' values)."""
    count = np.bincount(users, minlength=n_users)
    total = np.bincount(users, weights=values, minlength=n_users)
    seen = np.flatnonzero(count)
    return seen, total[seen] / count[seen]
