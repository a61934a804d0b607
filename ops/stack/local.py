"""`LocalStack`: Redis, N gunicorn replicas and nginx in front on this machine (the Python API of
`python -m ops.stack`, used by the demo, the tests and the benchmarks; see `ops.stack`)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from botify.redis_link import PASSWORD_ENV, connect
from botify.settings import Settings
from ops.redis_server import RedisServer, RedisServerError, free_port
from ops.stack.nginx import NGINX_TEMPLATE, find_nginx, render_nginx_conf, upstream_servers
from ops.stack.process import Child, StackError, http_status, tail
from ops.stack.supervise import SUPERVISE_EVERY, RestartPolicy

log = logging.getLogger("ops.stack")

GUNICORN_TARGET = "botify.app:create_app()"


class LocalStack:
    """Redis + N gunicorn replicas + nginx on this machine; see `ops.stack` and ops/stack/cli.py.

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
        self._replicas: list[Child] = []
        self._nginx: Child | None = None
        self._run_dir: tempfile.TemporaryDirectory | None = None
        self._expected_dead: set[str] = set()
        self._lock = threading.Lock()
        # The password of the stack's Redis (embedded or --redis-url): the argument, else the
        # settings' (BOTIFY_REDIS_PASSWORD). Handed to replicas by environment, never printed.
        self.redis_password = redis_password or Settings.load().redis_password
        self.supervise = supervise
        # With a deploy journal, a keeper child gives an emptied Redis its live version back.
        self.journal = Path(journal) if journal is not None else None
        self._keeper: Child | None = None
        self._supervisor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._restart_policy = RestartPolicy()

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

    @property
    def gave_up(self) -> str | None:
        """Why the supervisor gave up (a child kept dying: the CLI exits 1), else None."""
        return self._restart_policy.gave_up

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

    def _replica(self, index: int) -> Child:
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
            "-c", "python:ops.gunicorn_conf",
            "--bind", f"{self.host}:{self._replica_ports[index]}",
            "--workers", str(self.workers_per_replica),
            "--name", f"botify-{name}",
            self.target,
        ]  # fmt: skip
        return Child(name, args, env, self.stack_log_dir / f"{name}.log")

    def _nginx_child(self) -> Child:
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
        return Child("nginx", args, os.environ, self.stack_log_dir / "nginx.log")

    def _keeper_child(self) -> Child:
        assert self.journal is not None
        # the replicas' environment, so it reads the same settings (key prefix, password)
        env = {**os.environ, **self.extra_env}
        if self.redis_password:
            env[PASSWORD_ENV] = self.redis_password
        args = [sys.executable, "-m", "ops.keeper", "--redis-url", self.redis_url,
                "--journal", str(self.journal), "--interval", "0.5"]  # fmt: skip
        return Child("keeper", args, env, self.stack_log_dir / "keeper.log")

    def _children(self) -> list[Child]:
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
        elif self.wait_for == "auto" and http_status(self.url + "/ready", timeout=5) != 200:
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
                        f"{child.log_path}:\n{tail(child.log_path)}"
                    )
            pending = [url for url in pending if http_status(url) != 200]
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
        while http_status(url + "/health") != 200:
            if not child.alive:
                raise StackError(f"{child.name} exited on restart:\n{tail(child.log_path)}")
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
                if self._restart_policy.due(
                    child.name, now, f"exited with {child.proc.returncode}"
                ):
                    child.kill()  # its group: orphaned workers still hold the port
                    child.start()
                    restarted.append(child.name)
            server = self.redis_server
            if (
                server is not None
                and server.died
                and self._restart_policy.due("redis", now, "exited")
            ):
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

    def restarts(self, name: str) -> int:
        """How often the supervisor restarted `name` (`recommender-<i>`, `nginx`, `redis`)."""
        return self._restart_policy.count(name)

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
