"""The Botify stack without Docker: Redis, N gunicorn replicas and nginx in front, one command.

    python -m ops.stack up --world data/world --experiments config/experiments.yml \\
        --log-dir runs/logs [--replicas 2] [--workers-per-replica 1] [--port 8000] \\
        [--redis-url URL] [--nginx auto|on|off] [--wait-for auto|ready|health]

Topology (the same as docker-compose.yml):
- Redis: an embedded throw-away redis-server (ops.redis_server) unless --redis-url is given.
- replica i (i = 1..N): one gunicorn master (ops/gunicorn_conf.py, preloaded app) on its own
  loopback port, BOTIFY_REPLICA=recommender-<i>, BOTIFY_LOG_DIR=<log-dir>/recommender-<i>.
- nginx (when installed, or --nginx on): deploy/nginx.conf, the compose file's config, rendered with
  the replicas' addresses and a private run dir; it listens on --port. Without nginx the first
  replica listens on --port and is the URL; other replicas then get no traffic (a warning says so).

Each child runs in its own session (process group), so stopping or killing it also reaches its
workers. Process output goes to <log-dir>/stack/<name>.log. `READY <url>` is printed on stdout once
every replica and the front (nginx) answer /health and the front's /ready answers ok. /ready is also
false while a configured arm's list set is not deployed yet, which is how a fresh stack of the A/B
experiment starts (the trainer deploys the lists into the running stack's Redis): with the default
`--wait-for auto` such a stack is announced READY anyway, with the readiness reasons as a warning on
stderr; `--wait-for ready` waits for /ready strictly, `--wait-for health` skips it.

Supervision: a replica, nginx or the embedded Redis that dies is restarted (same port; nginx
serves from the other replicas meanwhile; Redis comes back empty), with a doubling back-off when
it dies again right away; after GIVE_UP_AFTER such deaths in a row the stack stops and exits 1.
Redis takes its password from BOTIFY_REDIS_PASSWORD (the embedded server then requires it, the
replicas get it by environment); it is never printed. SIGINT/SIGTERM stop everything (nginx, then
replicas, gracefully, then Redis) and exit 0; start-up failure exits 1; bad usage exits 2.

The Python API is `LocalStack`, a context manager used by the demo and the tests.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

from botify.redis_link import PASSWORD_ENV
from ops.redis_server import RedisServerError
from ops.stack.local import LocalStack
from ops.stack.process import StackError

log = logging.getLogger("ops.stack")


def _serve(stack: LocalStack) -> int:
    """Block until SIGINT/SIGTERM/SIGHUP (0) or until a child dies (1); always stops the stack."""
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum, _frame):
        received.append(signum)
        stop.set()

    previous = {
        s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        stack.start()
        print(f"READY {stack.url}", flush=True)
        log.info(
            "replicas %s, redis %s%s, logs in %s",
            stack.replica_urls,
            stack.redis_url,
            f" (password from {PASSWORD_ENV})" if stack.redis_password else "",
            stack.log_dir,
        )
        while not stop.wait(0.2):
            if stack.gave_up:  # the supervisor restarts what dies, until something keeps dying
                log.error("stopping the stack (see %s)", stack.stack_log_dir)
                return 1
        log.info("signal %d: stopping", received[0])
        return 0
    except (StackError, RedisServerError, OSError) as error:
        log.error("%s", error)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the clean-up
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.stack", description=(__doc__ or "").split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the stack and serve until SIGINT/SIGTERM")
    up.add_argument(
        "--world", required=True, help="world directory (its tracks.json is the catalog)"
    )
    up.add_argument("--experiments", required=True, help="experiments YAML")
    up.add_argument("--log-dir", required=True, help="log root: one folder per replica")
    up.add_argument("--replicas", type=int, default=2)
    up.add_argument("--workers-per-replica", type=int, default=1)
    up.add_argument("--port", type=int, default=8000, help="public port (nginx, else replica 1)")
    up.add_argument("--redis-url", help="use this Redis instead of an embedded one")
    up.add_argument("--nginx", choices=("auto", "on", "off"), default="auto")
    up.add_argument(
        "--wait-for",
        choices=("auto", "ready", "health"),
        default="auto",
        help="auto: READY once serving, a warning if /ready is not ok; ready: wait for /ready",
    )
    up.add_argument("--ready-timeout", type=float, default=60.0)
    up.add_argument(
        "--journal",
        default=os.environ.get("BOTIFY_JOURNAL"),
        help="deploy journal: a keeper restores an emptied Redis from it (BOTIFY_JOURNAL)",
    )
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if ns.replicas < 1 or ns.workers_per_replica < 1:
        parser.error("--replicas and --workers-per-replica must be >= 1")
    try:
        stack = LocalStack(
            ns.world,
            ns.experiments,
            ns.log_dir,
            replicas=ns.replicas,
            port=ns.port,
            redis_url=ns.redis_url,
            nginx=ns.nginx,
            workers_per_replica=ns.workers_per_replica,
            wait_for=ns.wait_for,
            ready_timeout=ns.ready_timeout,
            journal=ns.journal,
        )
    except StackError as error:
        log.error("%s", error)
        return 1
    return _serve(stack)
