"""The closed loop's speed: simulator -> nginx -> 2 replicas -> Redis -> event logs.

    python bench/bench_loop.py [--world data/world] [--seconds 20] [--processes 2]
                               [--batch-size 2048] [--arms sticky_artist sorted_indexed]

For each arm (the catalog-only `sticky_artist`, and `sorted_indexed` over random top-100 lists in
Redis) it starts the local stack (an embedded Redis, 2 gunicorn replicas, nginx) and drives it
for `--seconds` with the simulator's own engine (sim.batch, the default world's listeners) in
`--processes` processes, once over the per-request path (POST /next and /last, one request per
step, as the course's simulator) and once over the batch path (POST /batch/<shard>, one request
per shard and round). Printed per run: recommendations (steps) per second, and CPU microseconds
per step of the simulator processes and of the service's replicas (nginx and Redis beside).
The last line is one JSON object with `per_request_steps_per_s` and `batch_steps_per_s` (the
catalog-only arm) and every run's figures. The world is generated when missing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

from benchlib import deploy_random_lists, ensure_world, experiments_file, group_cpu_seconds

from ops.redis_server import RedisServer
from ops.stack import LocalStack
from sim.batch import BatchSimulator, run_key
from sim.transport import ServicePolicy, http_transport
from sim.user_model import Population
from sim.world import World

_POPULATION: Population | None = None  # built in the parent, shared by the forked drivers


class Counting:
    """Counts the steps a policy answered (a run is stopped mid-way: sessions are unfinished)."""

    def __init__(self, policy):
        self.policy, self.steps = policy, 0

    def step(self, sim, act, end):
        self.steps += len(act)
        return self.policy.step(sim, act, end)


def drive(args: tuple[str, str, int, int, int, float]) -> tuple[int, float]:
    """One simulator process: (steps answered, its CPU seconds) in `seconds` of wall time."""
    url, path, process, processes, batch_size, seconds = args
    population = _POPULATION
    users = list(range(process, population.n_users, processes))
    policy = Counting(ServicePolicy(http_transport(url, path)))
    cpu = time.process_time()
    deadline = time.monotonic() + seconds
    try:
        BatchSimulator(population, run_key(7, process), batch_size, users=users).run(
            policy, 10**9, stop=lambda: time.monotonic() >= deadline
        )
    finally:
        policy.policy.close()
    return policy.steps, time.process_time() - cpu


def measure(stack: LocalStack, redis_pid: int, path: str, ns) -> dict:
    pgids = {"service": stack.replica_pids, "nginx": [stack.nginx_pid], "redis": [redis_pid]}
    before = {k: group_cpu_seconds(v) for k, v in pgids.items()}
    started = time.monotonic()
    fork = multiprocessing.get_context("fork")
    jobs = [
        (stack.url, path, i, ns.processes, ns.batch_size, ns.seconds) for i in range(ns.processes)
    ]
    with fork.Pool(ns.processes) as pool:
        parts = pool.map(drive, jobs)
    wall = time.monotonic() - started
    steps = sum(s for s, _ in parts)
    cpu = {k: group_cpu_seconds(v) - before[k] for k, v in pgids.items()}
    cpu["simulator"] = sum(c for _, c in parts)
    return {
        "steps": steps,
        "seconds": round(wall, 2),
        "steps_per_s": round(steps / wall, 1),
        "cpu_us_per_step": {k: round(v / steps * 1e6, 1) for k, v in cpu.items()},
        "load": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    global _POPULATION
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", type=Path, default=Path("data/world"))
    parser.add_argument("--seconds", type=float, default=20.0, help="per arm and path")
    parser.add_argument("--processes", type=int, default=2, help="simulator processes")
    parser.add_argument("--batch-size", type=int, default=2048, help="live sessions per process")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--arms", nargs="+", default=["sticky_artist", "sorted_indexed"])
    parser.add_argument("--paths", nargs="+", default=["request", "batch"])
    ns = parser.parse_args()
    ensure_world(ns.world)
    world = World.load(ns.world)
    _POPULATION = Population(world)
    started = time.perf_counter()
    _POPULATION.index.warm(_POPULATION.interests)
    print(f"world {ns.world}: {world.n_tracks} tracks, {world.n_users} users; neighbour index "
          f"warmed in {time.perf_counter() - started:.1f} s; {os.cpu_count()} CPUs; "
          f"{ns.replicas} replicas + nginx + Redis; {ns.processes} simulator processes, "
          f"{ns.seconds:.0f} s per run", flush=True)  # fmt: skip
    results: dict[str, dict] = {}
    with (
        tempfile.TemporaryDirectory(prefix="botify-bench-loop-") as tmp,
        RedisServer() as redis_server,
    ):
        tmp = Path(tmp)
        deploy_random_lists(redis_server.url, world.n_users, world.n_tracks)
        for arm in ns.arms:
            experiments = experiments_file(tmp / f"{arm}.yml", arm)
            with LocalStack(ns.world, experiments, tmp / f"logs-{arm}", replicas=ns.replicas,
                            redis_url=redis_server.url, nginx="on") as stack:  # fmt: skip
                for path in ns.paths:
                    r = results[f"{arm} {path}"] = measure(stack, redis_server.pid, path, ns)
                    cpu = "  ".join(f"{k} {v:.0f}" for k, v in r["cpu_us_per_step"].items())
                    print(f"{arm:<15} {path:<8} {r['steps_per_s']:>9,.0f} steps/s "
                          f"({r['steps']:,} in {r['seconds']} s)  CPU us/step: {cpu}  "
                          f"load {r['load']}", flush=True)  # fmt: skip
    first = ns.arms[0]
    summary = {
        "arm": first,
        "per_request_steps_per_s": results.get(f"{first} request", {}).get("steps_per_s"),
        "batch_steps_per_s": results.get(f"{first} batch", {}).get("steps_per_s"),
        "runs": results,
    }
    if summary["per_request_steps_per_s"] and summary["batch_steps_per_s"]:
        ratio = summary["batch_steps_per_s"] / summary["per_request_steps_per_s"]
        summary["batch_vs_per_request"] = round(ratio, 2)
        print(f"batch / per-request ({first}): {ratio:.1f}x", flush=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
