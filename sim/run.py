"""Run simulated listeners against a recommender (the seed's command line).

    python -m sim.run [--episodes N] [--config config/env.yml] [--world DIR] [--url URL]
                      [--days D] [--summary-json FILE] [--batch-size B]
                      single --recommender AGENT [--seed S] [--transport batch|request]
                             [--lists NAME=recs.jsonl]
    python -m sim.run ... multi --processes P [--recommender AGENT] [--seed S] ...

AGENT: `remote` (the Botify service at --url), `oracle` (knows the hidden session: the ceiling),
`dummy` (uniformly random tracks), `console` (you type the tracks; single mode), or any
recommender the service registers (`random`, `sticky_artist`, `toppop`, the list arms with
`--lists core=recs.jsonl`, ...), run in-process by the service's own classes.

One episode is one session. `single` runs `--episodes` sessions per day in this process; `multi`
runs `--episodes` sessions per day in each of P processes; process i simulates only the users
u with u % P == i, so a user's requests come from one process in one order. Sessions are
stepped side by side (`--batch-size` live at once, sim.batch), and every session is a pure
function of (seed, process, day, its index): the same seed replays the same run, and the remote
transports (`--transport batch`, the default: one POST /batch/<shard> per shard per round;
`request`: one POST /next or /last per step) send exactly the same steps. Without `--days`, an
interactive terminal is asked after each day whether to go on (single mode); otherwise one day.
The summary per day (sessions, mean and standard error of session time and of tracks per
session) goes to stdout and, with `--summary-json`, to a JSON file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sim.batch import BatchSimulator, OraclePolicy, RandomPolicy, SessionResults, run_key
from sim.config import SimConfig, load_config
from sim.transport import InProcess, RemoteError, ServicePolicy, http_transport
from sim.user_model import Population


def agent_names() -> list[str]:
    """Every agent sim.run knows: the special ones plus every registered recommender."""
    from botify import recommenders
    from sim.agents import AGENTS  # the agents that are not service recommenders

    return [*AGENTS, *recommenders.names()]


@dataclass(frozen=True)
class Job:
    config: SimConfig
    recommender: str
    episodes: int
    days: int | None  # None: ask after each day
    seed: int
    process: int = 0  # index of this process in a multi run (progress bar row)
    processes: int = 1  # processes in the run: process i simulates the users u with u % P == i
    transport: str = "batch"
    batch_size: int = 2048
    lists: dict[str, str | Path] = field(default_factory=dict)


def make_policy(job: Job, population: Population, world):
    name = job.recommender
    if name == "remote":
        remote = job.config.remote
        transport = http_transport(
            remote.url, job.transport, remote.timeout, remote.retries, remote.backoff
        )
        return ServicePolicy(transport)
    if name == "oracle":
        return OraclePolicy()
    if name == "dummy":
        return RandomPolicy()
    return ServicePolicy(InProcess.build(world.catalog, name, lists=job.lists))


# Built (and its neighbour index warmed) once in the parent of a multi run; forked children
# share it copy-on-write instead of each searching the same neighbours again.
_SHARED: dict[Path, tuple] = {}


def shared_population(config: SimConfig):
    """(world, population) for the config, built once per process tree."""
    key = Path(config.world_dir).resolve()
    if key not in _SHARED:
        world = config.load_world()
        _SHARED[key] = (world, Population(world, config.user_model))
    return _SHARED[key]


def simulate(job: Job) -> list[tuple[int, int, float, int]]:
    """Runs the job's days; returns (day, user, session time, tracks) per session, in order."""
    world, population = shared_population(job.config)
    users = np.arange(job.process, population.n_users, job.processes)
    policy = make_policy(job, population, world)
    sessions: list[tuple[int, int, float, int]] = []
    day = 1
    try:
        while True:
            bar = tqdm(
                total=job.episodes,
                desc=f"day {day}" + (f" p{job.process}" if job.processes > 1 else ""),
                unit="session",
                position=job.process,
                file=sys.stderr,
                leave=job.process == 0,
                mininterval=0.5,
            )
            with bar:
                sim = BatchSimulator(
                    population,
                    run_key(job.seed, job.process, day),
                    batch_size=job.batch_size,
                    users=users,
                    progress=bar.update,
                )
                result = sim.run(policy, job.episodes).in_order()
            sessions += _rows(day, result)
            if job.days is not None and day >= job.days:
                break
            if job.days is None and not _ask_next_day(day):
                break
            day += 1
    finally:
        if hasattr(policy, "close"):
            policy.close()
    return sessions


def _rows(day: int, result: SessionResults) -> list[tuple[int, int, float, int]]:
    return [
        (day, int(u), float(t), int(n))
        for u, t, n in zip(result.user, result.time, result.tracks, strict=True)
    ]


def simulate_console(job: Job) -> list[tuple[int, int, float, int]]:
    """A person picks the tracks (RecEnv, one step at a time)."""
    from sim.agents import ConsoleAgent, run_episode
    from sim.env import RecEnv

    world = job.config.load_world()
    env = RecEnv(Population(world, job.config.user_model))
    sessions = []
    with ConsoleAgent(job.config.remote.url) as agent:
        day = 1
        while True:
            for episode in range(job.episodes):
                first = day == 1 and episode == 0  # seeded once; the env's stream carries on
                total, tracks = run_episode(env, agent, job.seed if first else None)
                sessions.append((day, env.user, total, tracks))
            if (job.days is not None and day >= job.days) or (
                job.days is None and not _ask_next_day(day)
            ):
                return sessions
            day += 1


def _ask_next_day(day: int) -> bool:
    if not sys.stdin.isatty():
        return False
    while True:
        answer = input(f"End of day {day}. Start a new day? (y/n) ").strip().lower()
        if answer in ("y", "n"):
            return answer == "y"


def _sem(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def summarise(sessions: list[tuple[int, int, float, int]]) -> list[dict]:
    days = sorted({s[0] for s in sessions})
    out = []
    for day in days:
        times = np.array([s[2] for s in sessions if s[0] == day], dtype=np.float64)
        tracks = np.array([s[3] for s in sessions if s[0] == day], dtype=np.float64)
        out.append(
            {
                "day": day,
                "sessions": len(times),
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


def _lists_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError("expected NAME=PATH, e.g. core=recs.jsonl")
    return name, path


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
    parser.add_argument(
        "--batch-size", type=int, default=2048, help="sessions live at once per process"
    )
    modes = parser.add_subparsers(dest="mode", required=True)
    agents = agent_names()
    for mode, help_ in (("single", "one process"), ("multi", "several processes")):
        sub = modes.add_parser(mode, help=help_)
        if mode == "multi":
            sub.add_argument("--processes", type=int, default=2)
        sub.add_argument(
            "--recommender",
            choices=agents,
            required=mode == "single",
            default="remote",
            metavar="AGENT",
            help=f"one of: {', '.join(agents)}",
        )
        sub.add_argument("--seed", type=int, default=None, help="default: the config's seed")
        sub.add_argument(
            "--transport",
            choices=("batch", "request"),
            default="batch",
            help="remote: one call per shard and round (batch) or per step (request)",
        )
        sub.add_argument(
            "--lists",
            type=_lists_arg,
            action="append",
            default=[],
            metavar="NAME=PATH",
            help="in-process list arms: a list file per list set (repeatable)",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.episodes < 1 or (args.days is not None and args.days < 1) or args.batch_size < 1:
        parser.error("--episodes, --days and --batch-size must be positive")
    processes = getattr(args, "processes", 1)
    if processes < 1:
        parser.error("--processes must be positive")
    if args.recommender == "console" and args.mode != "single":
        parser.error("the console agent needs single mode")
    config = load_config(args.config)
    if args.world is not None:
        config.world_dir = args.world
    if args.url:
        config.remote.url = args.url
    seed = config.seed if args.seed is None else args.seed
    config.load_world()  # generate it once here, not in every process
    days = args.days if args.mode == "single" else (args.days or 1)
    jobs = [
        Job(config, args.recommender, args.episodes, days, seed, i, processes,
            args.transport, args.batch_size, dict(args.lists))
        for i in range(processes)
    ]  # fmt: skip
    started = time.perf_counter()
    try:
        if args.recommender == "console":
            sessions = simulate_console(jobs[0])
        elif processes == 1:
            sessions = simulate(jobs[0])
        else:
            _, population = shared_population(config)
            population.index.warm(population.interests)  # every session's anchor is an interest
            fork = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(processes, mp_context=fork) as pool:
                sessions = [s for part in pool.map(simulate, jobs) for s in part]
    except RemoteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - started
    summary = summarise(sessions)
    steps = sum(s[3] for s in sessions)
    print(
        f"## {args.recommender}: {len(sessions)} sessions, {steps} steps in {elapsed:.1f} s "
        f"({steps / elapsed:,.0f} steps/s; seed {seed})\n"
    )
    print(markdown(summary))
    if args.summary_json:
        args.summary_json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "recommender": args.recommender,
            "mode": args.mode,
            "transport": args.transport if args.recommender == "remote" else "in-process",
            "processes": processes,
            "episodes": args.episodes,
            "seed": seed,
            "steps": steps,
            "elapsed_s": round(elapsed, 3),
            "sessions_sha256": sessions_digest(sessions),
            "days": summary,
        }
        args.summary_json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
