"""Simulator speed: the batched engine with the random and oracle policies, and the gymnasium
Env one step at a time.

    python bench/bench_sim.py [--world DIR] [--random-sessions 100000] [--oracle-sessions 3000]

Prints steps/s for each (a step = one recommended track heard). The exact nearest-neighbour
searches (one per distinct interest, cached) are timed separately as the index warm-up.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from sim.batch import BatchSimulator, OraclePolicy, RandomPolicy, run_key
from sim.config import load_config
from sim.env import RecEnv
from sim.user_model import Population


def timed(label: str, fn) -> float:
    started = time.perf_counter()
    steps = fn()
    elapsed = time.perf_counter() - started
    print(f"{label:<34} {steps:>9} steps in {elapsed:6.2f} s = {steps / elapsed:>10,.0f} steps/s")
    return steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", type=Path, default=None)
    parser.add_argument("--random-sessions", type=int, default=100_000)
    parser.add_argument("--oracle-sessions", type=int, default=3_000)
    parser.add_argument("--env-sessions", type=int, default=3_000)
    args = parser.parse_args()
    config = load_config()
    if args.world:
        config.world_dir = args.world
    world = config.load_world()
    population = Population(world, config.user_model)
    print(f"world {config.world_dir}: {world.n_tracks} tracks, {world.n_users} users, "
          f"dim {world.embeddings.shape[1]}")  # fmt: skip

    started = time.perf_counter()
    population.index.warm(population.interests)
    print(f"index warm-up: {len(np.unique(population.interests))} interests in "
          f"{time.perf_counter() - started:.1f} s (exact top-{population.index.depth} by inner product, once per world)")  # fmt: skip

    random_rate = timed(
        "batched random (batch 4096)",
        lambda: (
            BatchSimulator(population, run_key(0), 4096)
            .run(RandomPolicy(), args.random_sessions)
            .steps
        ),
    )
    timed(
        "batched oracle (batch 1024)",
        lambda: (
            BatchSimulator(population, run_key(1), 1024)
            .run(OraclePolicy(), args.oracle_sessions)
            .steps
        ),
    )

    def env_steps():
        # the gymnasium env stepped as its users do: one session, one step at a time
        env = RecEnv(population)
        env.reset(seed=0)
        steps = 0
        for _ in range(args.env_sessions):
            env.reset()
            done = False
            while not done:
                action = int(env.np_random.integers(env.action_space.n))
                _, _, terminated, truncated, _ = env.step(action)
                steps += 1
                done = terminated or truncated
        return steps

    env_rate = timed("Env + random, one step at a time", env_steps)
    print(f"batched random / Env: {random_rate / env_rate:.0f}x;"
          f" targets: random >= 50,000 steps/s, oracle >= 2,000 steps/s")  # fmt: skip


if __name__ == "__main__":
    main()
