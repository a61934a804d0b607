"""The ceiling and the floor of a simulated day: the oracle and random on the same sessions.

    python -m sim.ceiling --world DIR --seed S [--processes P] [--sessions K] --out ceiling.json

`python -m sim.run ... multi --processes P --seed S` runs, in process i, the sessions of
`run_key(S, i, day)` over the users u with u % P == i. This runs the first K of those very
sessions (same users, same first tracks, same listener draws) with the oracle (it knows the hidden
session: the best any recommender could do) and with uniformly random tracks, in-process, and
writes per agent the means of the report's per-session user-level metrics (`script.ab`),
counted as the service's log counts a session: the first track (time 1.0) is an event too. The A/B report shows
each arm between these two (`python -m script.ab --ceiling ceiling.json`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import numpy as np

from sim.batch import BatchSimulator, OraclePolicy, Policy, RandomPolicy, SessionResults, run_key
from sim.config import load_config
from sim.user_model import Population

PER_SESSION = ("mean_time_per_session", "mean_tracks_per_session")
AGENTS: dict[str, type[Policy]] = {"oracle": OraclePolicy, "random": RandomPolicy}


def run(population: Population, seed: int, processes: int, sessions: int, day: int = 1):
    """{agent: SessionResults} over the first `sessions` sessions of each process."""
    out = {}
    for agent, policy in AGENTS.items():
        parts = []
        for process in range(processes):
            users = np.arange(process, population.n_users, processes)
            sim = BatchSimulator(population, run_key(seed, process, day), users=users)
            parts.append(sim.run(policy(), sessions).in_order())
        out[agent] = SessionResults(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("user", "time", "tracks", "index")
            )
        )
    return out


def ceiling(results: dict[str, SessionResults]) -> dict:
    """The report's ceiling file (`script.ab.ceiling_from_sessions`), a session counted as the
    service's log has it: the first track's event (time 1.0) plus one per recommended track."""
    from measure.ceiling import ceiling_from_sessions

    found = ceiling_from_sessions({a: r.as_logged() for a, r in results.items()})
    # Only the per-session metrics compare with a day's arms: a user's total time and session
    # count grow with the number of sessions run, and the ceiling runs a sample of them.
    for means in found["agents"].values():
        for metric in [m for m in means if m not in PER_SESSION]:
            del means[metric]
    return found


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="default: config/env.yml")  # fmt: skip
@click.option("--world", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--seed", type=int, required=True, help="the simulated day's seed")
@click.option("--processes", type=click.IntRange(1), default=2, show_default=True)
@click.option("--sessions", type=click.IntRange(1), default=1000, show_default=True,
              help="per process")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
def cli(config, world, seed: int, processes: int, sessions: int, out: Path) -> None:
    """The oracle and random on the sessions of a simulated day: the A/B report's ceiling."""
    sim_config = load_config(config)
    if world is not None:
        sim_config.world_dir = world
    started = time.perf_counter()
    population = Population(sim_config.load_world(), sim_config.user_model)
    results = run(population, seed, processes, sessions)
    report = {"seed": seed, "processes": processes, **ceiling(results)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    for agent, means in report["agents"].items():
        click.echo(f"{agent:<7} mean_time_per_session {means['mean_time_per_session']:8.3f}  "
                   f"mean_tracks_per_session {means['mean_tracks_per_session']:8.2f}")  # fmt: skip
    click.echo(f"{report['sessions']} sessions per agent in {time.perf_counter() - started:.1f} s "
               f"-> {out}", err=True)  # fmt: skip


if __name__ == "__main__":
    cli(prog_name="python -m sim.ceiling")
