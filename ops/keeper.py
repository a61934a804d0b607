"""The keeper: gives an emptied Redis its live lists and model back from the deploy journal.

    python -m ops.keeper --redis-url URL --journal DIR [--name core ...] [--interval 1]

Every `interval` seconds it checks each list set; when Redis lacks the journal's active version
(restarted without persistence, flushed), it rewrites that version from the journal and switches
it on (`ops.journal.restore`), so the replicas serve the same lists and model again within
about one interval plus their pointer cache. One log line per restore; Redis being down is
logged once per outage. It needs only the service's packages, botify and ops (it runs from the
service image).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

import redis

from botify.deploy import DeployError
from botify.redis_link import connect
from botify.toplists import Client
from ops.journal import Journal, restore

log = logging.getLogger("ops.keeper")


class Keeper:
    def __init__(self, client: Client, journal: Path, names: list[str] | None = None):
        """`names`: the list sets to watch; None: every list set the journal holds (re-read
        each pass, so a list set deployed later is watched too)."""
        self.client, self.journal, self.names = client, Path(journal), names
        self._down = False

    def check(self) -> list[str]:
        """One pass: restore what Redis lost; returns the restored `name/version`s."""
        restored = []
        try:
            for name in self.names or Journal(self.journal).names():
                switch = restore(self.client, self.journal, name)
                if switch is not None:
                    log.warning("Redis had lost list set %r: restored %s (%d lists%s) from the "
                                "journal", name, switch.active, switch.users,
                                ", model" if switch.model else "")  # fmt: skip
                    restored.append(f"{name}/{switch.active}")
            if self._down:
                log.warning("Redis answers again")
            self._down = False
        except redis.RedisError as error:
            if not self._down:
                log.warning("Redis unavailable (%s); retrying", type(error).__name__)
            self._down = True
        except DeployError as error:
            log.error("cannot restore from %s: %s", self.journal, error)
        return restored

    def run(self, interval: float, stop: threading.Event) -> None:
        while not stop.is_set():
            self.check()
            stop.wait(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.keeper", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--name", action="append", default=None,
                        help="list set (repeatable; default: every list set of the journal)")  # fmt: skip
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between checks")
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    client = connect(ns.redis_url, socket_timeout=2, socket_connect_timeout=1)
    log.info("watching list sets %s against the journal %s", ns.name or "(all)", ns.journal)
    Keeper(client, ns.journal, ns.name).run(ns.interval, stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
