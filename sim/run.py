"""Run simulated listeners against a recommender (the seed's command line).

    python -m sim.run [--episodes N] [--config config/env.yml] [--world DIR] [--url URL]
                      [--days D] [--summary-json FILE]
                      single --recommender remote|dummy|console|oracle|random|sticky_artist|toppop
                             [--seed S]
    python -m sim.run ... multi --processes P [--recommender ...] [--seed S]

One episode is one session of a user the env draws. `single` runs `--episodes` sessions per
day in this process; `multi` runs `--episodes` sessions per day in each of P processes, each
on its own stream derived from the seed (numpy SeedSequence.spawn), so no two processes replay
the same sessions and the same seed replays the same run. Without `--days`, an interactive
terminal is asked after each day whether to go on (single mode); otherwise one day runs.
The summary per day (sessions, mean and standard error of session time and of tracks per
session) goes to stdout and, with `--summary-json`, to a JSON file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sim.agents import AGENTS, RemoteError, make_agent, run_episode
from sim.config import SimConfig, load_config
from sim.env import RecEnv
from sim.user_model import Population


@dataclass(frozen=True)
class Job:
    config: SimConfig
    recommender: str
    episodes: int
    days: int | None  # None: ask after each day
    seed: int
    process: int = 0  # index of this process in a multi run (tqdm row)
    processes: int = 1  # processes in the run: process i simulates the users u with u % P == i


def simulate(job: Job) -> list[tuple[int, int, float, int]]:
    """Runs the job's days; returns (day, user, session time, tracks) per session."""
    world = job.config.load_world()
    env = RecEnv(Population(world, job.config.user_model))
    remote = job.config.remote
    sessions = []
    seed: int | None = job.seed
    # In a multi run each process owns a disjoint share of the users, so one user's sessions never
    # run concurrently in two processes: their requests reach the service in one order (cursors,
    # session boundaries in the log) and a rerun replays them exactly.
    own_users = np.arange(job.process, env.population.n_users, job.processes)
    pick_user = np.random.default_rng([job.seed, job.process])
    with make_agent(
        job.recommender,
        env,
        world,
        seed=job.seed,
        url=remote.url,
        timeout=remote.timeout,
        retries=remote.retries,
        backoff=remote.backoff,
    ) as agent:
        day = 1
        while True:
            bar = tqdm(
                total=job.episodes,
                desc=f"day {day}" + (f" p{job.process}" if job.process else ""),
                position=job.process,
                file=sys.stderr,
                leave=job.process == 0,
                mininterval=0.5,
            )
            with bar:
                for _ in range(job.episodes):
                    user = None
                    if job.processes > 1:
                        user = int(own_users[pick_user.integers(len(own_users))])
                    total, tracks = run_episode(env, agent, seed, user=user)
                    seed = None  # seeded once; the env's stream carries on
                    sessions.append((day, env.user, total, tracks))
                    bar.update(1)
            if job.days is not None and day >= job.days:
                break
            if job.days is None and not _ask_next_day(day):
                break
            day += 1
    return sessions


def _ask_next_day(day: int) -> bool:
    if not sys.stdin.isatty():
        return False
    while True:
        answer = input(f"End of day {day}. Start a new day? (y/n) ").strip().lower()
        if answer in ("y", "n"):
            return answer == "y"


def process_seeds(seed: int, processes: int) -> list[int]:
    """Distinct, reproducible env seeds for the processes of a multi run."""
    children = np.random.SeedSequence(seed).spawn(processes)
    return [int(c.generate_state(1, dtype=np.uint64)[0]) for c in children]


def _sem(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def summarise(sessions: list[tuple[int, int, float, int]]) -> list[dict]:
    days = sorted({s[0] for s in sessions})
    out = []
    for day in days:
        times = np.array([s[2] for s in sessions if s[0] == day], dtype=np.float64)
        tracks = np.array([s[3] for s in sessions if s[0] == day], dtype=np.float64)
        n = len(times)
        out.append(
            {
                "day": day,
                "sessions": n,
                "time_mean": float(times.mean()),
                "time_sem": _sem(times),
                "tracks_mean": float(tracks.mean()),
                "tracks_sem": _sem(tracks),
            }
        )
    return out


def sessions_digest(sessions) -> str:
    """A fingerprint of every session (day, user, time, tracks), in order."""
    text = "\n".join(f"{d},{u},{t:.6f},{n}" for d, u, t, n in sessions)
    return hashlib.sha256(text.encode()).hexdigest()


def markdown(summary: list[dict]) -> str:
    lines = [
        "| day | sessions | time mean | time sem | tracks mean | tracks sem |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for d in summary:
        lines.append(
            f"| {d['day']} | {d['sessions']} | {d['time_mean']:.4f} | {d['time_sem']:.4f} "
            f"| {d['tracks_mean']:.4f} | {d['tracks_sem']:.4f} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sim.run", description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=100, help="sessions per day (per process)")
    parser.add_argument("--config", type=Path, default=None, help="default: config/env.yml")
    parser.add_argument(
        "--world", type=Path, default=None, help="world directory (overrides config)"
    )
    parser.add_argument(
        "--url", default=None, help="service base URL (default: config, BOTIFY_URL)"
    )
    parser.add_argument("--days", type=int, default=None, help="days to run without asking")
    parser.add_argument("--summary-json", type=Path, default=None)
    modes = parser.add_subparsers(dest="mode", required=True)
    single = modes.add_parser("single", help="one process")
    single.add_argument("--recommender", choices=AGENTS, required=True)
    single.add_argument("--seed", type=int, default=None, help="default: the config's seed")
    multi = modes.add_parser("multi", help="several processes, one stream each")
    multi.add_argument("--processes", type=int, default=2)
    multi.add_argument("--recommender", choices=AGENTS, default="remote")
    multi.add_argument("--seed", type=int, default=None, help="default: the config's seed")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.episodes < 1 or (args.days is not None and args.days < 1):
        parser.error("--episodes and --days must be positive")
    config = load_config(args.config)
    if args.world is not None:
        config.world_dir = args.world
    if args.url:
        config.remote.url = args.url
    seed = config.seed if args.seed is None else args.seed
    config.load_world()  # generate it once here, not in every process
    started = time.perf_counter()
    try:
        if args.mode == "single":
            job = Job(config, args.recommender, args.episodes, args.days, seed)
            sessions = simulate(job)
        else:
            if args.processes < 1:
                parser.error("--processes must be positive")
            if args.recommender == "console":
                parser.error("the console agent needs single mode")
            days = args.days or 1
            jobs = [
                Job(config, args.recommender, args.episodes, days, s, i, args.processes)
                for i, s in enumerate(process_seeds(seed, args.processes))
            ]
            with ProcessPoolExecutor(args.processes) as pool:
                sessions = [s for part in pool.map(simulate, jobs) for s in part]
    except RemoteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    summary = summarise(sessions)
    print(f"## {args.recommender}: {len(sessions)} sessions in {elapsed:.1f} s (seed {seed})\n")
    print(markdown(summary))
    if args.summary_json:
        args.summary_json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "recommender": args.recommender,
            "mode": args.mode,
            "processes": getattr(args, "processes", 1),
            "episodes": args.episodes,
            "seed": seed,
            "elapsed_s": round(elapsed, 3),
            "sessions_sha256": sessions_digest(sessions),
            "days": summary,
        }
        args.summary_json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
