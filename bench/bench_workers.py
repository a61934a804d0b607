"""Two gunicorn worker settings side by side, interleaved, on a shared machine.

    python bench/bench_workers.py [--world data/world] [--arm sorted_indexed] [--rounds 8]
        [--connections 4] [--seconds 2] [--a "--worker-class gthread"] [--b ""]

Starts one single-replica stack per setting (no nginx, one embedded Redis with random top-100
lists for every user), then alternates wrk runs on them (`--rounds` each, after one warm-up
round) so both see the same background load, and prints per setting: req/s and the replica's CPU
microseconds per request. The default compares gunicorn's stock gthread (a) with this project's
worker, ops.worker.BufferedThreadWorker (b, ops/gunicorn_conf.py's default).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench_service import next_load, run_wrk
from benchlib import experiments_file, world_size

from ops.redis_server import RedisServer
from ops.stack import LocalStack


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", type=Path, default=Path("data/world"))
    parser.add_argument("--arm", default="sorted_indexed")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=2, help="per wrk run")
    parser.add_argument("--a", default="--worker-class gthread", help="GUNICORN_CMD_ARGS of a")
    parser.add_argument("--b", default="", help="GUNICORN_CMD_ARGS of b")
    ns = parser.parse_args()
    users, tracks = world_size(ns.world)
    settings = {"a": ns.a, "b": ns.b}
    totals = {k: {"requests": 0, "seconds": 0.0, "cpu": 0.0} for k in settings}
    with tempfile.TemporaryDirectory(prefix="botify-workers-") as tmp, RedisServer() as server:
        tmp = Path(tmp)
        script, _ = next_load(server.url, tmp, users, tracks, seed=1)
        experiments = experiments_file(tmp / "arm.yml", ns.arm)
        stacks = {}
        try:
            for key, args in settings.items():
                stacks[key] = LocalStack(
                    ns.world, experiments, tmp / key, replicas=1, nginx="off",
                    redis_url=server.url, env={"GUNICORN_CMD_ARGS": args}, supervise=False,
                ).start()  # fmt: skip
            for round_ in range(ns.rounds + 1):
                for key, stack in stacks.items():
                    r = run_wrk(stack.url, ns.connections, ns.seconds, script, stack.replica_pids)
                    if round_:  # round 0 warms up
                        seconds = r["duration_us"] / 1e6
                        totals[key]["requests"] += r["requests"]
                        totals[key]["seconds"] += seconds
                        totals[key]["cpu"] += r["replica_cores"] * seconds
        finally:
            for stack in stacks.values():
                stack.stop()
    print(f"{ns.arm}, {ns.connections} connections, {ns.rounds} x {ns.seconds} s each, "
          f"interleaved; load average {os.getloadavg()}")  # fmt: skip
    for key, t in totals.items():
        print(f"  {key}: {t['requests'] / t['seconds']:6.0f} req/s  "
              f"{t['cpu'] / t['requests'] * 1e6:5.0f} us replica CPU per request  "
              f"({t['requests']} requests; GUNICORN_CMD_ARGS={settings[key]!r})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
