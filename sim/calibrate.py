"""Calibration: the course's baselines on our world, against what the course measured.

    python -m sim.calibrate [--world DIR | --world-seed N ...] [--sessions 20000] [--seed S]

Runs the service's own catalog-only recommenders (Random, StickyArtist, TopPop, and any other
that registers) and the oracle in-process on the batch simulator, all on the same sessions, and
prints one table of the calibration targets (`sim.course`): the course's value and interval,
ours with its 95 % Welch interval, and whether it holds. Metrics are counted the course's way,
as the A/B report counts them: per-user means, with the session's first track (time 1.0)
included. Several `--world-seed`s calibrate several generated worlds, one table each. Exit
status 0 when every target holds on every world, 1 otherwise.

The targets: Random's level (time 2.051 +- 5 %, tracks 7.047 +- 3 %); StickyArtist's effect
inside the course's interval on time and on tracks; TopPop's point inside the course's interval
on time (ours is about 2.5 times narrower at 20,000 sessions, so its significance is not
compared); the spread of the users' interests (at least 18,000 distinct interest tracks, none
the interest of more than 20 users). Everything else in the course's table is validation.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import click
import numpy as np

from measure.metrics import users_from_sessions
from sim.batch import BatchSimulator, OraclePolicy, Policy, SessionResults, run_key
from sim.config import load_config
from sim.course import COURSE_INTERESTS, RANDOM_LEVEL, TIME, TRACKS, course_effect
from sim.transport import InProcess, ServicePolicy
from sim.user_model import Population
from sim.world import World, generate


def agent_names() -> list[str]:
    """Every catalog-only recommender the service registers (in-process, no lists needed), then
    the oracle: new recommenders join the calibration by registering."""
    from botify import recommenders

    names = [n for n in recommenders.names() if not recommenders.get(n).uses_state]
    return [*names, "oracle"]


@dataclass(frozen=True)
class Effect:
    percent: float
    low: float
    high: float


def effect(treatment: np.ndarray, control: np.ndarray) -> Effect:
    """Difference of means in % of the control mean, with the A/B report's 95 % Welch interval."""
    from measure.stats import SampleMean, WelchTest  # the report's statistics, one definition

    test = WelchTest(SampleMean.of(control), SampleMean.of(treatment))
    low, high = test.confidence_interval
    base = test.control.mean / 100.0
    return Effect(test.diff / base, low / base, high / base)


def run_agents(
    world: World,
    population: Population,
    sessions: int,
    seed: int,
    agents=None,
    oracle_sessions: int | None = None,
) -> dict[str, SessionResults]:
    """Each agent on the same sessions (same users, first tracks and listener draws: the run's
    key is the seed's, not the agent's), so differences between agents are the agents'."""
    results = {}
    for name in agents or agent_names():
        policy: Policy = (
            OraclePolicy()
            if name == "oracle"
            else ServicePolicy(InProcess.build(world.catalog, name))
        )
        n = oracle_sessions if name == "oracle" and oracle_sessions else sessions
        results[name] = BatchSimulator(population, run_key(seed)).run(policy, n)
    return results


def per_user(results: SessionResults) -> dict[str, np.ndarray]:
    """The course's per-user means (first track included) of one agent's sessions."""
    users = users_from_sessions(*results.as_logged())
    return {metric: users[metric].to_numpy(float) for metric in (TIME, TRACKS)}


@dataclass(frozen=True)
class Check:
    target: str
    course: str  # the course's value (and interval)
    ours: str  # ours (and interval)
    holds: bool


def _pct(e) -> str:
    return f"{e.percent:+.1f} % [{e.low:+.1f}, {e.high:+.1f}]"


def interest_spread(world: World) -> tuple[int, int]:
    """(distinct interest tracks, the most users that share one interest track)."""
    tracks = np.array([t for u in world.users for t in u["interests"]], dtype=np.int64)
    counts = np.bincount(tracks, minlength=world.n_tracks)
    return int((counts > 0).sum()), int(counts.max())


def checks(world: World, results: dict[str, SessionResults]) -> list[Check]:
    """The calibration targets (module docstring) on one world's results."""
    metrics = {name: per_user(r) for name, r in results.items() if name != "oracle"}
    random = metrics["random"]
    out = []
    for metric, tolerance in ((TIME, 0.05), (TRACKS, 0.03)):
        level = RANDOM_LEVEL[metric]
        values = random[metric]
        mean, half = values.mean(), 1.96 * values.std(ddof=1) / np.sqrt(len(values))
        out.append(Check(
            f"random, {metric}", f"{level:.3f} +- {tolerance:.0%}",
            f"{mean:.3f} [{mean - half:.3f}, {mean + half:.3f}]",
            bool(abs(mean / level - 1) <= tolerance),
        ))  # fmt: skip
    for name, metric in (("sticky_artist", TIME), ("sticky_artist", TRACKS), ("toppop", TIME)):
        if name not in metrics:
            continue
        course = course_effect(name, metric)
        ours = effect(metrics[name][metric], random[metric])
        out.append(Check(
            f"{name} vs random, {metric}", _pct(course), _pct(ours),
            bool(course.low <= ours.percent <= course.high),
        ))  # fmt: skip
    distinct, most = interest_spread(world)
    out.append(Check(
        "distinct interest tracks", f"{COURSE_INTERESTS.distinct_tracks:,} (ours >= 18,000)",
        f"{distinct:,}", distinct >= 18_000,
    ))  # fmt: skip
    out.append(Check(
        "most users sharing one interest track",
        f"{COURSE_INTERESTS.max_users_per_track} (ours <= 20)", f"{most}", most <= 20,
    ))  # fmt: skip
    return out


def agents_table(results: dict[str, SessionResults]) -> str:
    lines = [
        f"| agent | sessions | {TIME} | {TRACKS} | time vs random | tracks vs random |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    metrics = {name: per_user(r) for name, r in results.items()}
    control = metrics["random"]
    for name, m in metrics.items():
        cells = [
            name,
            f"{len(results[name].time)}",
            f"{m[TIME].mean():.3f}",
            f"{m[TRACKS].mean():.3f}",
        ]
        if name == "random":
            cells += ["", ""]
        else:
            cells += [_pct(effect(m[metric], control[metric])) for metric in (TIME, TRACKS)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def checks_table(found: list[Check]) -> str:
    lines = ["| target | course | ours | holds |", "|---|---|---|---|"]
    lines += [
        f"| {c.target} | {c.course} | {c.ours} | {'yes' if c.holds else 'NO'} |" for c in found
    ]
    return "\n".join(lines)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="simulator config (default: config/env.yml)",
)
@click.option(
    "--world",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="a world folder (default: the config's)",
)
@click.option(
    "--world-seed",
    "world_seeds",
    type=int,
    multiple=True,
    help="calibrate the generated world of this seed (repeatable; the config's sizes)",
)
@click.option(
    "--sessions",
    type=click.IntRange(100),
    default=20_000,
    show_default=True,
    help="sessions per agent",
)
@click.option("--seed", type=int, default=None, help="the sessions' seed (default: the config's)")
@click.option(
    "--oracle-sessions",
    type=click.IntRange(0),
    default=1000,
    show_default=True,
    help="the oracle is slower; 0: no oracle",
)
def main(config, world, world_seeds, sessions, seed, oracle_sessions) -> None:
    """The course's baselines on our world, against what the course measured (exit 1: a target
    does not hold)."""
    settings = load_config(config)
    if world is not None and world_seeds:
        raise click.UsageError("--world and --world-seed exclude each other")
    seed = settings.seed if seed is None else seed
    agents = [a for a in agent_names() if oracle_sessions or a != "oracle"]
    worlds: list[tuple[str, World]] = []
    if world_seeds:
        for world_seed in world_seeds:
            shape = replace(settings.world_shape)
            worlds.append((f"generated, world seed {world_seed}", generate(world_seed, shape)))
    else:
        if world is not None:
            settings.world_dir = world
        worlds.append((str(settings.world_dir), settings.load_world()))
    failed = []
    for label, this in worlds:
        started = time.perf_counter()
        population = Population(this, settings.user_model)
        results = run_agents(this, population, sessions, seed, agents, oracle_sessions)
        found = checks(this, results)
        click.echo(f"## world {label}: {this.n_tracks} tracks, {this.n_users} users; "
                   f"{sessions} sessions per agent, seed {seed}\n")  # fmt: skip
        click.echo(agents_table(results) + "\n")
        click.echo(checks_table(found) + "\n")
        click.echo(f"({time.perf_counter() - started:.1f} s)", err=True)
        failed += [f"{label}: {c.target}" for c in found if not c.holds]
    if failed:
        click.echo("does not hold: " + "; ".join(failed), err=True)
        sys.exit(1)
    click.echo(f"every target holds on {len(worlds)} world(s)")


if __name__ == "__main__":
    main()
