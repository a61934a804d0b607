"""A real Redis Cluster for the tests: N masters from the same redis-server binary the other tests
use (ops.redis_server.find_redis_server), slots split evenly, joined with CLUSTER MEET. Nothing
is persisted. `url` is the `redis+cluster://` URL the service takes (botify.redis_link.connect)."""

from __future__ import annotations

import random
import socket
import subprocess
import tempfile
import time

import redis

from ops.redis_server import find_redis_server

SLOTS = 16384
BUS_OFFSET = 10000  # a node's cluster bus listens on its port + 10000


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_ports(count: int) -> list[int]:
    """Ports below the ephemeral range whose bus port (+10000) is free as well."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(20000, 30000)
        if port not in ports and _free(port) and _free(port + BUS_OFFSET):
            ports.append(port)
    return ports


class LocalCluster:
    def __init__(self, masters: int = 3):
        self.masters = masters
        self.ports: list[int] = []
        self._procs: list[subprocess.Popen] = []
        self._dir: tempfile.TemporaryDirectory | None = None

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def nodes(self) -> list[redis.Redis]:
        """A plain client per node (each sees only its own slots)."""
        return [redis.Redis(host="127.0.0.1", port=port) for port in self.ports]

    def start(self, timeout: float = 30.0) -> LocalCluster:
        self._dir = tempfile.TemporaryDirectory(prefix="botify-cluster-")
        self.ports = _cluster_ports(self.masters)
        for port in self.ports:
            args = [
                find_redis_server(), "--port", str(port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", "5000", "--dir", self._dir.name, "--save", "",
                "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning",
            ]  # fmt: skip
            self._procs.append(
                subprocess.Popen(args, stdout=subprocess.DEVNULL, start_new_session=True)
            )
        deadline = time.monotonic() + timeout
        nodes = self.nodes()
        try:
            for node in nodes:
                self._wait(lambda node=node: node.ping(), deadline)
            bounds = [SLOTS * i // self.masters for i in range(self.masters + 1)]
            for i, node in enumerate(nodes):
                node.execute_command("CLUSTER ADDSLOTS", *range(bounds[i], bounds[i + 1]))
            for port in self.ports[1:]:
                nodes[0].execute_command("CLUSTER MEET", "127.0.0.1", port)
            for node in nodes:
                self._wait(lambda node=node: self._joined(node), deadline)
        except BaseException:
            self.stop()
            raise
        finally:
            for node in nodes:
                node.close()
        return self

    def _joined(self, node: redis.Redis) -> bool:
        info = node.execute_command("CLUSTER INFO")  # parsed by redis-py into a dict
        known = node.execute_command("CLUSTER NODES")
        return info.get("cluster_state") == "ok" and len(known) == self.masters

    def _wait(self, ready, deadline: float) -> None:
        while True:
            if any(proc.poll() is not None for proc in self._procs):
                raise RuntimeError("a cluster node's redis-server exited")
            try:
                if ready():
                    return
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis Cluster did not come up")
            time.sleep(0.05)

    def flushall(self) -> None:
        for node in self.nodes():
            node.flushall()
            node.close()

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs = []
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
