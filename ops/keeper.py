"""The keeper: gives an emptied Redis its live lists and model back from the deploy journal.

    python -m ops.keeper --journal DIR [--redis-url URL] [--key-prefix P] [--name core ...]
                         [--interval 1]

Every `interval` seconds it checks each list set; when Redis lacks the journal's active version
(restarted without persistence, flushed), it rewrites that version from the journal and switches
it on (`ops.journal.restore`), so the replicas serve the same lists and model again within
about one interval plus their pointer cache. One log line per restore; Redis being down is
logged once per outage. Redis, its password, the key prefix and the journal come from the
service's settings (`botify.settings`: BOTIFY_* variables, BOTIFY_CONFIG), so the keeper restores
exactly what the replicas read. It needs only the service's packages, botify and ops (it runs
from the service image).
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import click
import redis

from botify import settings as botify_settings
from botify.deploy import DeployError
from botify.redis_link import client_for
from botify.toplists import Client
from ops.journal import Journal, restore

log = logging.getLogger("ops.keeper")


class Keeper:
    def __init__(self, client: Client, journal: Path, names: list[str] | None, prefix: str) -> None:
        """`names`: the list sets to watch; None or empty: every list set the journal holds
        (re-read each pass, so a list set deployed later is watched too)."""
        self.client, self.journal, self.names = client, Path(journal), names
        self.prefix = prefix
        self._down = False

    def check(self) -> list[str]:
        """One pass: restore what Redis lost; returns the restored `name/version`s."""
        restored = []
        try:
            for name in self.names or Journal(self.journal).names():
                switch = restore(self.client, self.journal, name, prefix=self.prefix)
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


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@botify_settings.option("redis_url", "the Redis the replicas use")
@botify_settings.option("key_prefix", "the replicas' Redis key prefix")
@botify_settings.option(
    "journal", "deploy journal folder (required here)", type=click.Path(file_okay=False)
)
@click.option("--name", "names", multiple=True,
              help="list set (repeatable; default: every list set of the journal)")  # fmt: skip
@click.option("--interval", type=float, default=1.0, show_default=True,
              help="seconds between checks")  # fmt: skip
def cli(redis_url, key_prefix, journal, names, interval) -> None:
    """Restore an emptied Redis's live lists and model from the deploy journal."""
    settings = botify_settings.from_options(
        redis_url=redis_url, key_prefix=key_prefix, journal=journal
    )
    if settings.journal is None:
        raise click.UsageError("no journal: give --journal or set BOTIFY_JOURNAL")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    client = client_for(settings, socket_timeout=2, socket_connect_timeout=1)
    lists = list(names)
    log.info("watching list sets %s under %r against the journal %s", lists or "(all)",
             settings.key_prefix, settings.journal)  # fmt: skip
    Keeper(client, Path(settings.journal), lists, settings.key_prefix).run(interval, stop)


if __name__ == "__main__":
    cli(prog_name="python -m ops.keeper")
