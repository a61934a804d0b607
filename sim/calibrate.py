"""Calibration: the course's baselines on our world, against what the course measured.

    python -m sim.calibrate [--config config/env.yml] [--world DIR] [--sessions 20000] [--seed S]

Runs the service's own Random, StickyArtist and TopPop classes (and the oracle) in-process on
the batch simulator, then prints per agent the mean time and tracks per session, and each
baseline's effect against Random in % with a 95 % confidence interval, checked against the
course's bands (its real-data world: StickyArtist +45.6 % time, +13.4 % tracks; TopPop +3.5 %,
not significant). Exit status 0 when all bands hold, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.batch import BatchSimulator, OraclePolicy, Policy, SessionResults, run_key
from sim.config import load_config
from sim.transport import InProcess, ServicePolicy
from sim.user_model import Population
from sim.world import World


def agent_names() -> list[str]:
    """Every catalog-only recommender the service registers (in-process, no lists needed), then
    the oracle: new recommenders join the calibration by registering."""
    from botify import recommenders

    names = [n for n in recommenders.names() if not recommenders.get(n).uses_state]
    return [*names, "oracle"]


# (agent, metric, low %, high %): the course's targets for effects against Random.
BANDS = (
    ("sticky_artist", "time", 30.0, 60.0),
    ("sticky_artist", "tracks", 5.0, 25.0),
    ("toppop", "time", -10.0, 10.0),
)


@dataclass(frozen=True)
class Effect:
    percent: float
    low: float
    high: float


def effect(treatment: np.ndarray, control: np.ndarray) -> Effect:
    """Difference of means in % of the control mean, 95 % Welch (normal) interval."""
    diff = treatment.mean() - control.mean()
    se = np.sqrt(treatment.var(ddof=1) / len(treatment) + control.var(ddof=1) / len(control))
    base = control.mean() / 100.0
    return Effect(diff / base, (diff - 1.96 * se) / base, (diff + 1.96 * se) / base)


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


def report(results: dict[str, SessionResults]) -> tuple[str, bool]:
    lines = [
        "| agent | sessions | mean_time_per_session | tracks_per_session | time vs random | tracks vs random |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    control = results["random"]
    for name, r in results.items():
        cells = [name, f"{len(r.time)}", f"{r.time.mean():.3f}", f"{r.tracks.mean():.2f}"]
        if name == "random":
            cells += ["", ""]
        else:
            for metric in ("time", "tracks"):
                e = effect(getattr(r, metric).astype(float), getattr(control, metric).astype(float))
                cells.append(f"{e.percent:+.1f} % [{e.low:+.1f}, {e.high:+.1f}]")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| check | target | measured | ok |", "|---|---|---|---|"]
    ok_all = True
    for name, metric, low, high in BANDS:
        if name not in results:
            continue
        e = effect(
            getattr(results[name], metric).astype(float), getattr(control, metric).astype(float)
        )
        ok = low <= e.percent <= high
        ok_all &= ok
        lines.append(
            f"| {name} vs random, {metric} | {low:+.0f} .. {high:+.0f} % | {e.percent:+.1f} % "
            f"[{e.low:+.1f}, {e.high:+.1f}] | {'yes' if ok else 'NO'} |"
        )
    return "\n".join(lines), ok_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sim.calibrate", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--config", type=Path, default=None, help="default: config/env.yml")
    parser.add_argument(
        "--world", type=Path, default=None, help="world directory (overrides config)"
    )
    parser.add_argument("--sessions", type=int, default=20_000, help="sessions per agent")
    parser.add_argument("--seed", type=int, default=None, help="default: the config's seed")
    parser.add_argument("--oracle-sessions", type=int, default=1000, help="the oracle is slower")
    parser.add_argument("--no-oracle", action="store_true", help="skip the oracle")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.world is not None:
        config.world_dir = args.world
    world = config.load_world()
    seed = config.seed if args.seed is None else args.seed
    started = time.perf_counter()
    population = Population(world, config.user_model)
    agents = [a for a in agent_names() if not (args.no_oracle and a == "oracle")]
    results = run_agents(world, population, args.sessions, seed, agents, args.oracle_sessions)
    table, ok = report(results)
    print(
        f"world {config.world_dir}: {world.n_tracks} tracks, {world.n_users} users; "
        f"{args.sessions} sessions per agent, seed {seed}\n"
    )
    print(table)
    print(f"\n({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
