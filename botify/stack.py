"""The Botify stack without Docker: Redis, N gunicorn replicas and nginx in front, one command.

    python -m botify.stack up --world data/world --experiments config/experiments.yml \\
        --log-dir runs/logs [--replicas 2] [--workers-per-replica 1] [--port 8000] \\
        [--redis-url URL] [--nginx auto|on|off] [--wait-for auto|ready|health]

Topology (the same as docker-compose.yml):
- Redis: an embedded throw-away redis-server (botify.redis_server) unless --redis-url is given.
- replica i (i = 1..N): one gunicorn master (botify/gunicorn_conf.py, preloaded app) on its own
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
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from botify.redis_server import RedisServer, RedisServerError, free_port
from botify.store import PASSWORD_ENV, connect

log = logging.getLogger("botify.stack")

NGINX_TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "nginx.conf"
GUNICORN_TARGET = "botify.app:create_app()"
_PLACEHOLDER = re.compile(r"\$\{(BOTIFY_[A-Z0-9_]+)\}")


# Supervision (LocalStack.heal): how often to look, what counts as dying right after a
# restart, and after how many such deaths in a row to give up.
SUPERVISE_EVERY = 0.1
RESTART_WINDOW = 10.0
GIVE_UP_AFTER = 5


class StackError(RuntimeError):
    """The stack could not start, or a part of it died."""


class _Restarts:
    """One supervised process's restart record."""

    def __init__(self):
        self.total = 0
        self.in_a_row = 0
        self.started_at: float | None = None
        self.next_at: float | None = None  # a restart is scheduled for then


def render_nginx_conf(template: str, values: Mapping[str, str]) -> str:
    """Fill the `${BOTIFY_*}` placeholders, as the nginx image's envsubst step does in compose.

    Every placeholder must have a value (envsubst would leave it in place and nginx fail later).
    """
    missing = sorted(set(_PLACEHOLDER.findall(template)) - set(values))
    if missing:
        raise StackError(f"no value for nginx.conf placeholders {missing}")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


def upstream_servers(addresses: list[str]) -> str:
    """The BOTIFY_UPSTREAM value for fixed replica addresses (`host:port`)."""
    # max_fails=1: one refused connection takes a dead replica out for fail_timeout, then nginx
    # tries it again (a restarted replica on the same port comes back by itself).
    return " ".join(f"server {a} max_fails=1 fail_timeout=2s;" for a in addresses)


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _http_status(url: str, timeout: float = 1.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return None


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class _Child:
    """One supervised process (and its process group)."""

    def __init__(self, name: str, args: list[str], env: Mapping[str, str], log_path: Path):
        self.name = name
        self.args = args
        self.env = dict(env)
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                self.args,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: signals reach its workers too
            )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal_group(self, sig: int) -> bool:
        if self.proc is None:
            return False
        try:
            os.killpg(self.proc.pid, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Ask the leader to stop (its own graceful shutdown), then kill whatever is left."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s: killing it", self.name, timeout)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the whole group (a leader killed alone would orphan its workers)."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait()
        # Orphans of a leader that died first are still in the group: wait until it is empty.
        deadline = time.monotonic() + 5
        while self._signal_group(0) and time.monotonic() < deadline:
            self._signal_group(signal.SIGKILL)
            time.sleep(0.02)


class LocalStack:
    """Redis + N gunicorn replicas + nginx on this machine; see the module docstring.

    `replica_urls[i]` is replica `recommender-<i+1>`; `kill_replica(i)`/`restart_replica(i)` take
    that same 0-based index. `url` is nginx's address (or the first replica's without nginx).
    """

    def __init__(
        self,
        world_dir: str | os.PathLike,
        experiments: str | os.PathLike,
        log_dir: str | os.PathLike,
        replicas: int = 2,
        port: int | None = None,
        redis_url: str | None = None,
        nginx: str | bool = "auto",
        workers_per_replica: int = 1,
        wait_for: str = "auto",
        ready_timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        target: str = GUNICORN_TARGET,
        supervise: bool = True,
        redis_password: str | None = None,
        journal: str | os.PathLike | None = None,
    ):
        if replicas < 1 or workers_per_replica < 1:
            raise ValueError("replicas and workers_per_replica must be >= 1")
        if wait_for not in ("auto", "ready", "health"):
            raise ValueError("wait_for is 'auto', 'ready' or 'health'")
        self.world_dir = Path(world_dir)
        self.catalog = self.world_dir / "tracks.json"
        self.experiments = Path(experiments)
        self.log_dir = Path(log_dir)
        self.replicas = replicas
        self.workers_per_replica = workers_per_replica
        self.host = host
        self.wait_for = wait_for
        self.ready_timeout = ready_timeout
        self.extra_env = dict(env or {})
        self.target = target  # what gunicorn serves; benchmarks swap in peer apps
        self.nginx_binary = self._choose_nginx(nginx)
        self.port = port or free_port(host)
        # Without nginx the first replica takes the public port.
        first = [] if self.nginx_binary else [self.port]
        self._replica_ports = first + [free_port(host) for _ in range(replicas - len(first))]
        self.redis_server: RedisServer | None = None
        self._redis_url = redis_url
        self._replicas: list[_Child] = []
        self._nginx: _Child | None = None
        self._run_dir: tempfile.TemporaryDirectory | None = None
        self._expected_dead: set[str] = set()
        self._lock = threading.Lock()
        # The password of the stack's Redis (embedded or --redis-url): the argument, else the
        # environment's BOTIFY_REDIS_PASSWORD. Handed to replicas by environment, never printed.
        self.redis_password = redis_password or os.environ.get(PASSWORD_ENV) or None
        self.supervise = supervise
        # With a deploy journal, a keeper child gives an emptied Redis its live version back.
        self.journal = Path(journal) if journal is not None else None
        self._keeper: _Child | None = None
        self._supervisor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._restarts: dict[str, _Restarts] = {}
        self.gave_up: str | None = None  # set when a child keeps dying: the CLI exits 1

    @staticmethod
    def _choose_nginx(nginx: str | bool) -> str | None:
        mode = {True: "on", False: "off"}[nginx] if isinstance(nginx, bool) else nginx
        if mode not in ("auto", "on", "off"):
            raise ValueError("nginx is 'auto', 'on' or 'off'")
        if mode == "off":
            return None
        binary = find_nginx()
        if binary is None and mode == "on":
            raise StackError("nginx is not installed (tools/system-packages.sh installs it)")
        return binary

    # -- addresses ------------------------------------------------------------------------
    @property
    def redis_url(self) -> str:
        if self.redis_server is not None:
            return self.redis_server.url
        if self._redis_url is None:
            raise StackError("the stack's Redis is not started")
        return self._redis_url

    def redis_client(self, **options):
        """A redis-py client of the stack's Redis, with its password."""
        return connect(self.redis_url, self.redis_password, **options)

    @property
    def replica_urls(self) -> list[str]:
        return [f"http://{self.host}:{port}" for port in self._replica_ports]

    @property
    def replica_pids(self) -> list[int | None]:
        """Each replica's gunicorn master pid (also its process group id), None when not started."""
        return [child.proc.pid if child.proc else None for child in self._replicas]

    @property
    def nginx_pid(self) -> int | None:
        """nginx's master pid (its process group holds the workers), None without nginx."""
        return self._nginx.proc.pid if self._nginx and self._nginx.proc else None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}" if self.nginx_binary else self.replica_urls[0]

    @property
    def stack_log_dir(self) -> Path:
        return self.log_dir / "stack"

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> LocalStack:
        for path, what in ((self.catalog, "catalog"), (self.experiments, "experiments file")):
            if not path.is_file():
                raise StackError(f"{what} {str(path)!r} not found")
        if self.nginx_binary is None and self.replicas > 1:
            log.warning(
                "nginx not used: %d replicas are not balanced, clients reach only the first",
                self.replicas,
            )
        try:
            if self._redis_url is None:
                self.redis_server = RedisServer(password=self.redis_password).start()
            self._replicas = [self._replica(i) for i in range(self.replicas)]
            for child in self._replicas:
                child.start()
            if self.nginx_binary:
                self._nginx = self._nginx_child()
                self._nginx.start()
            if self.journal is not None:
                self._keeper = self._keeper_child()
                self._keeper.start()
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        if self.supervise:
            self._stopping.clear()
            self._supervisor = threading.Thread(
                target=self._supervise, name="botify-stack-supervisor", daemon=True
            )
            self._supervisor.start()
        return self

    def _replica(self, index: int) -> _Child:
        name = f"recommender-{index + 1}"
        env = {
            **os.environ,
            "BOTIFY_REDIS_URL": self.redis_url,
            "BOTIFY_CATALOG": str(self.catalog),
            "BOTIFY_EXPERIMENTS": str(self.experiments),
            "BOTIFY_LOG_DIR": str(self.log_dir / name),
            "BOTIFY_REPLICA": name,
            **self.extra_env,
        }
        if self.redis_password:
            env[PASSWORD_ENV] = self.redis_password
        env.pop("BOTIFY_LOG_ROOT", None)  # that is the container's way of naming a replica
        args = [
            sys.executable, "-m", "gunicorn",
            "-c", "python:botify.gunicorn_conf",
            "--bind", f"{self.host}:{self._replica_ports[index]}",
            "--workers", str(self.workers_per_replica),
            "--name", f"botify-{name}",
            self.target,
        ]  # fmt: skip
        return _Child(name, args, env, self.stack_log_dir / f"{name}.log")

    def _nginx_child(self) -> _Child:
        self._run_dir = tempfile.TemporaryDirectory(prefix="botify-nginx-")
        run_dir = Path(self._run_dir.name)
        # A root master runs its workers as `nobody`: they must be able to enter the run dir.
        run_dir.chmod(0o755)
        error_log = self.stack_log_dir / "nginx-error.log"
        error_log.parent.mkdir(parents=True, exist_ok=True)
        addresses = [f"{self.host}:{port}" for port in self._replica_ports]
        conf = render_nginx_conf(
            NGINX_TEMPLATE.read_text(),
            {
                "BOTIFY_NGINX_PORT": f"{self.host}:{self.port}",
                "BOTIFY_NGINX_RUN_DIR": str(run_dir),
                "BOTIFY_NGINX_ERROR_LOG": str(error_log.resolve()),
                "BOTIFY_UPSTREAM": upstream_servers(addresses),
            },
        )
        conf_path = run_dir / "nginx.conf"
        conf_path.write_text(conf)
        assert self.nginx_binary is not None
        args = [
            self.nginx_binary,
            "-p", f"{run_dir}/",
            "-c", str(conf_path),
            "-e", str(error_log.resolve()),  # before the config is read (not /var/log/nginx)
            "-g", "daemon off;",
        ]  # fmt: skip
        return _Child("nginx", args, os.environ, self.stack_log_dir / "nginx.log")

    def _keeper_child(self) -> _Child:
        assert self.journal is not None
        env = dict(os.environ)
        if self.redis_password:
            env[PASSWORD_ENV] = self.redis_password
        args = [sys.executable, "-m", "botify.keeper", "--redis-url", self.redis_url,
                "--journal", str(self.journal), "--interval", "0.5"]  # fmt: skip
        return _Child("keeper", args, env, self.stack_log_dir / "keeper.log")

    def _children(self) -> list[_Child]:
        return (
            self._replicas
            + ([self._nginx] if self._nginx else [])
            + ([self._keeper] if self._keeper else [])
        )

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        front = [self.url] if self.nginx_binary else []
        self._wait_for_200([u + "/health" for u in [*self.replica_urls, *front]], deadline)
        if self.wait_for == "ready":
            self._wait_for_200([self.url + "/ready"], deadline)
        elif self.wait_for == "auto" and _http_status(self.url + "/ready", timeout=5) != 200:
            try:
                with urllib.request.urlopen(self.url + "/ready", timeout=5) as response:
                    report = response.read().decode(errors="replace")
            except urllib.error.HTTPError as error:
                report = error.read().decode(errors="replace")
            except OSError as error:
                report = repr(error)
            log.warning("serving, but /ready is not ok yet: %s", report.strip())

    def _wait_for_200(self, pending: list[str], deadline: float) -> None:
        while pending:
            for child in self._children():
                if child.proc is not None and not child.alive:
                    raise StackError(
                        f"{child.name} exited with {child.proc.returncode} during start-up; "
                        f"{child.log_path}:\n{_tail(child.log_path)}"
                    )
            pending = [url for url in pending if _http_status(url) != 200]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise StackError(f"{pending} did not answer 200 in {self.ready_timeout:.0f} s")
            time.sleep(0.1)

    def kill_replica(self, index: int) -> None:
        """SIGKILL replica `index` (master and workers), like `docker kill`."""
        child = self._replicas[index]
        with self._lock:
            self._expected_dead.add(child.name)
        child.kill()

    def restart_replica(self, index: int, timeout: float = 30.0) -> None:
        """Start replica `index` again on the same port (after kill_replica or a crash)."""
        child = self._replicas[index]
        if child.alive:
            child.stop()
        child.start()
        url = self.replica_urls[index]
        deadline = time.monotonic() + timeout
        while _http_status(url + "/health") != 200:
            if not child.alive:
                raise StackError(f"{child.name} exited on restart:\n{_tail(child.log_path)}")
            if time.monotonic() > deadline:
                raise StackError(f"{child.name} did not come back in {timeout:.0f} s")
            time.sleep(0.05)
        with self._lock:
            self._expected_dead.discard(child.name)

    # -- supervision ----------------------------------------------------------------------
    def _supervise(self) -> None:
        while not self._stopping.wait(SUPERVISE_EVERY):
            try:
                self.heal()
            except Exception:  # the supervisor must outlive any one failed restart
                log.exception("supervisor: restart failed")

    def heal(self, now: float | None = None) -> list[str]:
        """Restart every child (and the embedded Redis) that died without being asked to.

        A child that dies again within RESTART_WINDOW of its restart is restarted after a
        doubling back-off; after GIVE_UP_AFTER such deaths in a row the stack gives up
        (`gave_up` says why; the CLI then stops and exits 1). Returns what it restarted."""
        restarted = []
        now = time.monotonic() if now is None else now
        with self._lock:
            for child in self._children():
                if child.proc is None or child.alive or child.name in self._expected_dead:
                    continue
                if self._restart_due(child.name, now, f"exited with {child.proc.returncode}"):
                    child.kill()  # its group: orphaned workers still hold the port
                    child.start()
                    restarted.append(child.name)
            server = self.redis_server
            if server is not None and server.died and self._restart_due("redis", now, "exited"):
                server.stop()
                try:
                    server.start()
                except RedisServerError as error:
                    log.error("redis did not come back: %s", error)
                else:
                    log.warning(
                        "redis restarted on the same port, empty: the catalog fingerprint "
                        "comes back by itself, list sets %s",
                        "from the journal (keeper)" if self.journal else "by a new deploy",
                    )
                restarted.append("redis")
        return restarted

    def _restart_due(self, name: str, now: float, why: str) -> bool:
        record = self._restarts.setdefault(name, _Restarts())
        if record.next_at is None:  # first look at this death
            quick = record.started_at is not None and now - record.started_at < RESTART_WINDOW
            record.in_a_row = record.in_a_row + 1 if quick else 1
            if record.in_a_row > GIVE_UP_AFTER:
                if self.gave_up is None:
                    self.gave_up = f"{name} {why} {GIVE_UP_AFTER} times in a row after restarts"
                    log.error("%s; giving up", self.gave_up)
                return False
            delay = 0.0 if record.in_a_row == 1 else min(0.1 * 2 ** (record.in_a_row - 1), 5.0)
            record.next_at = now + delay
            log.warning("%s %s; restarting it%s", name, why, f" in {delay:.1f} s" if delay else "")
        if now < record.next_at:
            return False
        record.next_at, record.started_at = None, now
        record.total += 1
        return True

    def restarts(self, name: str) -> int:
        """How often the supervisor restarted `name` (`recommender-<i>`, `nginx`, `redis`)."""
        record = self._restarts.get(name)
        return record.total if record else 0

    def stop(self) -> None:
        """Stop nginx, then the replicas (gracefully: their events are closed), then Redis."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
            self._supervisor = None
        if self._keeper is not None:
            self._keeper.stop(timeout=5)
            self._keeper = None
        if self._nginx is not None:
            self._nginx.stop(signal.SIGQUIT, timeout=5)  # graceful: lets proxied requests finish
        for child in self._replicas:
            if child.proc is not None and child.alive:
                child.proc.send_signal(signal.SIGTERM)  # all replicas drain in parallel
        for child in self._replicas:
            child.stop(timeout=12)  # > gunicorn's graceful_timeout
        if self.redis_server is not None:
            self.redis_server.stop()
            self.redis_server = None
        if self._run_dir is not None:
            self._run_dir.cleanup()
            self._run_dir = None
        self._nginx = None
        self._replicas = []

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


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
        prog="python -m botify.stack", description=__doc__.split("\n")[0]
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


if __name__ == "__main__":
    sys.exit(main())
