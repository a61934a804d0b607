"""The Botify stack without Docker: Redis, N gunicorn replicas and nginx in front, one command.

    python -m ops.stack up --world data/world --experiments config/experiments.yml \\
        --log-dir runs/logs [--replicas 2] [--workers-per-replica 1] [--port 8000] \\
        [--redis-url URL] [--nginx auto|on|off] [--wait-for auto|ready|health] [--journal DIR]

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
replicas get it by environment); it is never printed. The replicas and the keeper read every other
setting (BOTIFY_KEY_PREFIX, ...) from the same environment (`botify.settings`); --journal also
reads BOTIFY_JOURNAL. SIGINT/SIGTERM stop everything (nginx, then
replicas, gracefully, then Redis) and exit 0; start-up failure exits 1; bad usage exits 2.

The Python API is `LocalStack`, a context manager used by the demo and the tests.
"""

from __future__ import annotations

import logging
import signal
import threading

import click

from botify import settings as botify_settings
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """The Botify stack without Docker: Redis, N gunicorn replicas and nginx in front."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


@cli.command("up")
@click.option("--world", required=True, type=click.Path(file_okay=False),
              help="world directory (its tracks.json is the catalog)")  # fmt: skip
@click.option("--experiments", required=True, type=click.Path(dir_okay=False),
              help="experiments YAML")  # fmt: skip
@click.option("--log-dir", required=True, type=click.Path(file_okay=False),
              help="log root: one folder per replica")  # fmt: skip
@click.option("--replicas", type=click.IntRange(1), default=2, show_default=True)
@click.option("--workers-per-replica", type=click.IntRange(1), default=1, show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="public port (nginx, else replica 1); 0: a free one")  # fmt: skip
@click.option("--redis-url", default=None, help="use this Redis instead of an embedded one")
@click.option("--nginx", type=click.Choice(["auto", "on", "off"]), default="auto",
              show_default=True)  # fmt: skip
@click.option("--wait-for", type=click.Choice(["auto", "ready", "health"]), default="auto",
              show_default=True,
              help="auto: READY once serving, a warning if /ready is not ok; ready: wait for /ready")  # fmt: skip
@click.option("--ready-timeout", type=float, default=60.0, show_default=True)
@botify_settings.option(
    "journal", "deploy journal: a keeper restores an emptied Redis from it",
    type=click.Path(file_okay=False),
)  # fmt: skip
def up(world, experiments, log_dir, replicas, workers_per_replica, port, redis_url, nginx,
       wait_for, ready_timeout, journal) -> None:  # fmt: skip
    """Start the stack and serve until SIGINT/SIGTERM; prints `READY <url>` once serving."""
    try:
        stack = LocalStack(
            world,
            experiments,
            log_dir,
            replicas=replicas,
            port=port,
            redis_url=redis_url,
            nginx=nginx,
            workers_per_replica=workers_per_replica,
            wait_for=wait_for,
            ready_timeout=ready_timeout,
            journal=journal,
        )
    except StackError as error:
        log.error("%s", error)
        raise SystemExit(1) from error
    raise SystemExit(_serve(stack))
