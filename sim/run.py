"""Run simulated listeners against a recommender (the seed's command line).

    python -m sim.run [--episodes N] [--config config/env.yml] [--world DIR] [--url URL]
                      [--days D] [--summary-json FILE] [--batch-size B]
                      single --recommender AGENT [--seed S] [--transport batch|request]
                             [--lists NAME=recs.jsonl]
    python -m sim.run ... multi --processes P [--recommender AGENT] [--seed S] ...

AGENT: `remote` (the Botify service at --url), `oracle` (knows the hidden session: the ceiling),
`random` (uniformly random tracks drawn by the simulator, `sim.batch.RandomPolicy`, the
ceiling's floor; `dummy` is the course's name for it), `console` (you type the tracks; single
mode), or any other recommender the service registers (`sticky_artist`, `toppop`, the list arms
with `--lists core=recs.jsonl`, ...), run in-process by the service's own classes.

One episode is one session. `single` runs `--episodes` sessions per day in this process; `multi`
runs `--episodes` sessions per day in each of P processes; process i simulates only the users
u with u % P == i, so a user's requests come from one process in one order. Sessions are
stepped side by side (`--batch-size` live at once, sim.batch; the console agent: one), and every
session is a pure function of (seed, process, day, its index): the same seed replays the same
run, and the remote transports (`--transport batch`, the default: one POST /batch/<shard> per
shard per round; `request`: one POST /next or /last per step) send exactly the same steps.
Without `--days`, an interactive terminal is asked after each day whether to go on (single
mode); otherwise one day. The summary per day (sessions, mean and standard error of session
time and of tracks per session) goes to stdout and, with `--summary-json`, to a JSON file.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from sim.batch import BatchSimulator, OraclePolicy, RandomPolicy, SessionResults, run_key
from sim.config import SimConfig, load_config
from sim.transport import InProcess, RemoteError, ServicePolicy, http_transport
from sim.user_model import Population

# The simulator's own agents; any other name is a recommender the service registers, run
# in-process by the service's own classes. `dummy` is the course's name for `random`.
AGENTS = ("remote", "oracle", "random", "dummy", "console")


def agent_names() -> list[str]:
    """Every agent sim.run knows: the simulator's own plus every registered recommender."""
    from botify import recommenders

    return [*AGENTS, *(name for name in recommenders.names() if name not in AGENTS)]


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
    if name in ("random", "dummy"):
        return RandomPolicy()
    if name == "console":
        from sim.console import ConsolePolicy

        return ConsolePolicy(job.config.remote.url)
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
                disable=job.recommender == "console",  # the prompts go to the terminal
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


def _lists(ctx, param, values: tuple[str, ...]) -> dict[str, str]:
    lists = {}
    for text in values:
        name, sep, path = text.partition("=")
        if not sep or not name or not path:
            raise click.BadParameter("expected NAME=PATH, e.g. core=recs.jsonl")
        lists[name] = path
    return lists


@dataclass(frozen=True)
class RunOptions:
    """The options before the mode: what to simulate, and where the summary goes."""

    episodes: int
    config: Path | None
    world: Path | None
    url: str | None
    days: int | None
    summary_json: Path | None
    batch_size: int


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--episodes", type=click.IntRange(1), default=100, show_default=True,
              help="sessions per day (per process)")  # fmt: skip
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="default: config/env.yml")  # fmt: skip
@click.option("--world", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="world directory (overrides config)")  # fmt: skip
@click.option("--url", envvar="BOTIFY_URL", show_envvar=True, default=None,
              help="service base URL (default: the config's)")  # fmt: skip
@click.option("--days", type=click.IntRange(1), default=None, help="days to run without asking")
@click.option("--summary-json", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--batch-size", type=click.IntRange(1), default=2048, show_default=True,
              help="sessions live at once per process")  # fmt: skip
@click.pass_context
def cli(ctx, **options) -> None:
    """Run simulated listeners against a recommender (the seed's command line)."""
    ctx.obj = RunOptions(**options)


def _agent_options(mode: str):
    """The options both modes share, after the mode (as in the seed's command line)."""
    agents = agent_names()

    def decorate(command):
        options = [
            click.option("--recommender", type=click.Choice(agents), metavar="AGENT",
                         required=mode == "single", default=None if mode == "single" else "remote",
                         show_default=mode != "single",
                         help=f"one of: {', '.join(agents)}"),
            click.option("--seed", type=int, default=None, help="default: the config's seed"),
            click.option("--transport", type=click.Choice(["batch", "request"]), default="batch",
                         show_default=True,
                         help="remote: one call per shard and round (batch) or per step (request)"),
            click.option("--lists", multiple=True, callback=_lists, metavar="NAME=PATH",
                         help="in-process list arms: a list file per list set (repeatable)"),
        ]  # fmt: skip
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@cli.command("single")
@_agent_options("single")
@click.pass_obj
def single(options: RunOptions, recommender, seed, transport, lists) -> None:
    """Run the sessions in this process."""
    raise SystemExit(_run(options, "single", 1, recommender, seed, transport, lists))


@cli.command("multi")
@click.option("--processes", type=click.IntRange(1), default=2, show_default=True)
@_agent_options("multi")
@click.pass_obj
def multi(options: RunOptions, processes, recommender, seed, transport, lists) -> None:
    """Run the sessions in several processes, each owning its share of the users."""
    if recommender == "console":
        raise click.UsageError("the console agent needs single mode")
    raise SystemExit(_run(options, "multi", processes, recommender, seed, transport, lists))


def _run(options: RunOptions, mode: str, processes: int, recommender: str, seed: int | None,
         transport: str, lists: dict[str, str]) -> int:  # fmt: skip
    config = load_config(options.config)
    if options.world is not None:
        config.world_dir = options.world
    if options.url:
        config.remote.url = options.url
    seed = config.seed if seed is None else seed
    config.load_world()  # generate it once here, not in every process
    days = options.days if mode == "single" else (options.days or 1)
    jobs = [
        Job(config, recommender, options.episodes, days, seed, i, processes, transport,
            1 if recommender == "console" else options.batch_size, dict(lists))
        for i in range(processes)
    ]  # fmt: skip
    started = time.perf_counter()
    try:
        if processes == 1:
            sessions = simulate(jobs[0])
        else:
            _, population = shared_population(config)
            population.index.warm(population.interests)  # every session's anchor is an interest
            fork = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(processes, mp_context=fork) as pool:
                sessions = [s for part in pool.map(simulate, jobs) for s in part]
    except RemoteError as e:
        click.echo(f"error: {e}", err=True)
        return 1
    elapsed = time.perf_counter() - started
    summary = summarise(sessions)
    steps = sum(s[3] for s in sessions)
    click.echo(
        f"## {recommender}: {len(sessions)} sessions, {steps} steps in {elapsed:.1f} s "
        f"({steps / elapsed:,.0f} steps/s; seed {seed})\n"
    )
    click.echo(markdown(summary))
    if options.summary_json:
        options.summary_json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "recommender": recommender,
            "mode": mode,
            "transport": transport if recommender == "remote" else "in-process",
            "processes": processes,
            "episodes": options.episodes,
            "seed": seed,
            "steps": steps,
            "elapsed_s": round(elapsed, 3),
            "sessions_sha256": sessions_digest(sessions),
            "days": summary,
        }
        options.summary_json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    cli(prog_name="python -m sim.run")
