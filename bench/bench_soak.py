"""A soak run of the local stack: steady load for minutes, then what drifted.

    python bench/bench_soak.py [--world data/world] [--seconds 300] [--interval 10]
                               [--connections 8] [--arm sorted_indexed]

Starts the stack (an embedded Redis with random top-100 lists for every user, 2 replicas, nginx),
drives it with wrk (POST /next/<random user>, bench_service.py's script) in back-to-back
intervals, and prints per interval: req/s, p50/p99, non-2xx and socket errors, the replicas'
resident memory and CPU, and the load average. At the end: total requests and errors, the worst
p99, the replicas' RSS at start and end (after a warm-up interval), nginx's and Redis's RSS, and
event-log bytes per event. The world is generated when missing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench_service import next_load, run_wrk
from benchlib import count_lines, experiments_file, group_rss_bytes, world_size

from ops.redis_server import RedisServer
from ops.stack import LocalStack

MIB = 2**20


def log_size(log_dir: Path) -> tuple[int, int]:
    """(bytes, lines) of every event file under log_dir."""
    size = lines = 0
    for path in log_dir.rglob("events-*.jsonl*"):
        size += path.stat().st_size
        lines += count_lines(path)
    return size, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", type=Path, default=Path("data/world"))
    parser.add_argument("--seconds", type=int, default=300, help="load time after the warm-up")
    parser.add_argument("--interval", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--arm", default="sorted_indexed")
    ns = parser.parse_args()
    users, tracks = world_size(ns.world)
    print(f"soak: {ns.seconds} s of wrk at {ns.connections} connections, arm {ns.arm}, "
          f"{ns.interval} s intervals; {os.cpu_count()} CPUs", flush=True)  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="botify-soak-") as tmp, RedisServer() as server:
        tmp = Path(tmp)
        script, _ = next_load(server.url, tmp, users, tracks, seed=7)
        experiments = experiments_file(tmp / "arm.yml", ns.arm)
        logs = tmp / "logs"
        with LocalStack(ns.world, experiments, logs, replicas=2, redis_url=server.url) as stack:
            pgids = stack.replica_pids
            run_wrk(stack.url, ns.connections, ns.interval, script, pgids)  # warm-up
            rss_start = group_rss_bytes(pgids)
            totals = {"requests": 0, "non2xx": 0, "socket_errors": 0, "seconds": 0.0}
            worst_p99 = 0.0
            started = time.monotonic()
            while time.monotonic() - started < ns.seconds:
                r = run_wrk(stack.url, ns.connections, ns.interval, script, pgids)
                rss = group_rss_bytes(pgids)
                worst_p99 = max(worst_p99, r["p99_us"] / 1e3)
                for key in ("requests", "non2xx", "socket_errors"):
                    totals[key] += r[key]
                totals["seconds"] += r["duration_us"] / 1e6
                print(
                    f"t={time.monotonic() - started:5.0f} s {r['rps']:7.0f} req/s  "
                    f"p50 {r['p50_us'] / 1e3:6.2f} ms  p99 {r['p99_us'] / 1e3:7.2f} ms  "
                    f"non-2xx {r['non2xx']}  socket errors {r['socket_errors']}  "
                    f"replicas {rss / MIB:6.1f} MiB RSS, {r['replica_cores']:.2f} cores  "
                    f"load {os.getloadavg()[0]:.2f}",
                    flush=True,
                )
            rss_end = group_rss_bytes(pgids)
            nginx_rss = group_rss_bytes([stack.nginx_pid]) if stack.nginx_pid else 0
            redis_rss = group_rss_bytes([server.pid])
        size, lines = log_size(logs)  # after the stop: every worker has closed its file
    print(
        f"\ntotal: {totals['requests']} requests in {totals['seconds']:.0f} s "
        f"({totals['requests'] / totals['seconds']:.0f} req/s), non-2xx {totals['non2xx']}, "
        f"socket errors {totals['socket_errors']}, worst interval p99 {worst_p99:.2f} ms\n"
        f"replicas RSS {rss_start / MIB:.1f} MiB after warm-up -> {rss_end / MIB:.1f} MiB at the "
        f"end ({(rss_end - rss_start) / MIB:+.1f} MiB); nginx {nginx_rss / MIB:.1f} MiB, "
        f"Redis {redis_rss / MIB:.1f} MiB\n"
        f"event log: {size} bytes, {lines} events, {size / max(lines, 1):.1f} bytes per event\n"
        f"load average {os.getloadavg()}"
    )
    return 0 if totals["non2xx"] == totals["socket_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
