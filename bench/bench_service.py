"""Throughput and latency of POST /next through the local stack (2 replicas + nginx), with wrk.

    python bench/bench_service.py [--world data/world] [--duration 8] [--connections 1 8 32]
                                  [--gunicorn-args "--threads 1 --worker-class sync"]

For each arm (`sorted_indexed` over deployed random top-100 lists, and the catalog-only
`sticky_artist`) it starts the stack on one embedded Redis, runs wrk (a Lua script POSTs
/next/<random user> with a JSON body) at each connection count through nginx, and once at one
connection straight to a replica over keep-alive (the course service stalled 40 ms there).
Printed per run: req/s, p50/p99 latency, non-2xx count, and the replicas' CPU (cores used), so
req/s per replica core compares with the course's 733-883 req/s per process at 0.85 core.
Then the same stack, load and gunicorn policy serve two peer apps that do almost nothing
(bench/stack_floor.py: a bare WSGI function, and Flask + flask-restful echoing the track), and
each arm's throughput is printed as a share of theirs: the ceiling the stack itself sets on this
machine, whatever the app does (`--no-peers` skips them). Each arm's CPU per request with the
WSGI app called in-process (no HTTP, no gunicorn) shows how much of a request is the app's own.
The world is generated (`python -m sim.world --out DIR --seed 42`) when missing.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from benchlib import (
    deploy_random_lists,
    experiments_file,
    group_cpu_seconds,
    world_size,
)

from ops.redis_server import RedisServer
from ops.stack import LocalStack

BENCH_DIR = Path(__file__).resolve().parent
# Peers served by the same stack (bench/stack_floor.py): the ceiling any app meets here.
PEERS = {
    "bare_wsgi": "stack_floor:bare_wsgi",
    "flask_echo": "stack_floor:flask_echo()",
    "flask_redis": "stack_floor:flask_redis()",  # + one Redis round trip, as the list arms do
}

WRK_SCRIPT = """
math.randomseed(%(seed)d)
local users, tracks = %(users)d, %(tracks)d
local headers = {["Content-Type"] = "application/json"}
request = function()
  local body = string.format('{"track": %%d, "time": %%.2f}', math.random(0, tracks - 1), math.random())
  return wrk.format("POST", "/next/" .. math.random(0, users - 1), headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "non2xx": %%d, "socket_errors": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def next_load(redis_url: str, folder: Path, users: int, tracks: int, seed: int) -> tuple[Path, str]:
    """The load every stack benchmark sends: random top-100 lists deployed and activated for every
    user (so list arms serve from Redis), and wrk's POST /next script; (script, version)."""
    version = deploy_random_lists(redis_url, users, tracks)
    script = folder / "next.lua"
    script.write_text(WRK_SCRIPT % {"seed": seed, "users": users, "tracks": tracks})
    return script, version


def run_wrk(url: str, connections: int, duration: int, script: Path, pgids: list[int]) -> dict:
    threads = min(2, connections)
    cpu_before = group_cpu_seconds(pgids)
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s",
         "--timeout", "5s", "-s", str(script), url],
        capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode:
        raise RuntimeError(
            f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}"
        )
    cpu = group_cpu_seconds(pgids) - cpu_before
    line = next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    seconds = result["duration_us"] / 1e6
    result["rps"] = result["requests"] / seconds
    result["replica_cores"] = cpu / seconds
    return result


def in_process_cost(
    world: Path,
    experiments: Path,
    redis_url: str,
    log_dir: Path,
    users: int,
    tracks: int,
    requests: int = 20_000,
) -> float:
    """CPU seconds per POST /next calling the app's WSGI callable directly (no HTTP, no gunicorn)."""
    from botify.app import create_app

    app = create_app({"CATALOG": str(world / "tracks.json"), "EXPERIMENTS": str(experiments),
                      "REDIS_URL": redis_url, "LOG_DIR": str(log_dir)})  # fmt: skip
    rng = np.random.default_rng(1)
    bodies = [
        json.dumps({"track": int(t), "time": round(float(x), 2)}).encode()
        for t, x in zip(rng.integers(tracks, size=1000), rng.random(1000), strict=True)
    ]
    paths = [f"/next/{u}" for u in rng.integers(users, size=1000)]

    def start_response(status, headers, exc_info=None):
        if not status.startswith("200"):
            raise RuntimeError(f"in-process request failed: {status}")

    def call(i: int) -> None:
        body = bodies[i % 1000]
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": paths[i % 1000], "QUERY_STRING": "",
            "SERVER_NAME": "bench", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "bench", "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
            "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
        }  # fmt: skip
        response = app(environ, start_response)
        b"".join(response)
        response.close()

    for i in range(2000):  # warm-up
        call(i)
    start = time.process_time()
    for i in range(requests):
        call(i)
    seconds = (time.process_time() - start) / requests
    app.extensions["botify"].events.close()
    return seconds


def report(label: str, connections: int, r: dict) -> None:
    per_core = r["rps"] / r["replica_cores"] if r["replica_cores"] else float("nan")
    print(
        f"{label:<34} c={connections:<3} {r['rps']:8.0f} req/s  p50 {r['p50_us'] / 1e3:6.2f} ms  "
        f"p99 {r['p99_us'] / 1e3:6.2f} ms  non-2xx {r['non2xx']}  socket errors {r['socket_errors']}  "
        f"replicas {r['replica_cores']:.2f} cores ({per_core:.0f} req/s per core)",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--world", type=Path, default=Path("data/world"))
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument(
        "--gunicorn-args",
        default="",
        help="extra gunicorn options for every replica (GUNICORN_CMD_ARGS)",
    )
    parser.add_argument("--arms", nargs="+", default=["sorted_indexed", "sticky_artist"])
    parser.add_argument(
        "--no-peers", dest="peers", action="store_false",
        help="skip the peer apps (bench/stack_floor.py) that show the stack's own ceiling",
    )  # fmt: skip
    ns = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (tools/system-packages.sh installs it)", file=sys.stderr)
        return 1
    users, tracks = world_size(ns.world)
    print(f"world {ns.world}: {tracks} tracks, {users} users; {os.cpu_count()} CPUs; "
          f"{ns.replicas} replicas x 1 worker (ops/gunicorn_conf.py {ns.gunicorn_args}), "
          "nginx, wrk on the same machine")  # fmt: skip

    env = {"GUNICORN_CMD_ARGS": ns.gunicorn_args}
    results: dict[str, dict] = {}

    def measure(label: str, stack: LocalStack) -> None:
        with stack:
            pgids = stack.replica_pids
            run_wrk(stack.url, 8, 2, script, pgids)  # warm-up
            for connections in ns.connections:
                r = run_wrk(stack.url, connections, ns.duration, script, pgids)
                results[f"{label} via nginx c={connections}"] = r
                report(f"{label} via nginx", connections, r)
            r = run_wrk(stack.replica_urls[0], 1, ns.duration, script, pgids)
            results[f"{label} direct c=1"] = r
            report(f"{label} direct keep-alive, 1 replica", 1, r)

    with tempfile.TemporaryDirectory(prefix="botify-bench-") as tmp, RedisServer() as server:
        tmp = Path(tmp)
        start = time.perf_counter()
        script, version = next_load(server.url, tmp, users, tracks, seed=1)
        print(f"deployed random top-100 lists for {users} users as core/{version} "
              f"in {time.perf_counter() - start:.1f} s")  # fmt: skip
        for arm in ns.arms:
            experiments = experiments_file(tmp / f"{arm}.yml", arm)
            stack = LocalStack(
                ns.world, experiments, tmp / f"logs-{arm}", replicas=ns.replicas,
                redis_url=server.url, nginx="on", env=env,
            )  # fmt: skip
            measure(arm, stack)
            cost = in_process_cost(ns.world, experiments, server.url, tmp / f"in-process-{arm}",
                                   users, tracks)  # fmt: skip
            print(f"{arm} in process (WSGI call, no HTTP): {cost * 1e6:.0f} us CPU per request "
                  f"({1 / cost:.0f} req/s per core)", flush=True)  # fmt: skip
        if not ns.peers:
            return 0
        # The peers need no experiments (flask_redis reads the same Redis); the stack still
        # checks the files exist.
        peer_env = {
            **env,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH")])
            ),
        }
        for peer, target in PEERS.items():
            stack = LocalStack(
                ns.world, experiments, tmp / f"logs-{peer}", replicas=ns.replicas,
                redis_url=server.url, nginx="on", env=peer_env, wait_for="health", target=target,
            )  # fmt: skip
            measure(peer, stack)
    print("\nthroughput of each arm as a share of each peer's, same run:")
    for key, r in results.items():
        arm, where = key.split(" ", 1)
        if arm in PEERS:
            continue
        shares = "  ".join(
            f"{results[f'{peer} {where}']['rps'] and r['rps'] / results[f'{peer} {where}']['rps']:.2f} of {peer}"
            for peer in PEERS
        )
        print(f"{arm:<16} {where:<16} {shares}")
    summary = {key: round(r["rps"]) for key, r in results.items()}
    print(json.dumps({"rps": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
