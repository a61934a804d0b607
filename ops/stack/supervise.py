"""The local stack's restart policy: restart what dies, with a doubling back-off when it dies
again right away, and give up after GIVE_UP_AFTER such deaths in a row."""

from __future__ import annotations

import logging

log = logging.getLogger("ops.stack")

# Supervision (LocalStack.heal): how often to look, what counts as dying right after a
# restart, and after how many such deaths in a row to give up.
SUPERVISE_EVERY = 0.1
RESTART_WINDOW = 10.0
GIVE_UP_AFTER = 5


class _Restarts:
    """One supervised process's restart record."""

    def __init__(self):
        self.total = 0
        self.in_a_row = 0
        self.started_at: float | None = None
        self.next_at: float | None = None  # a restart is scheduled for then


class RestartPolicy:
    """When to restart each supervised process (by name) after it died, and when to give up."""

    def __init__(self):
        self._records: dict[str, _Restarts] = {}
        self.gave_up: str | None = None  # set when a process keeps dying: the CLI exits 1

    def due(self, name: str, now: float, why: str) -> bool:
        """Whether to restart `name`, dead for reason `why`, now (called until it says so)."""
        record = self._records.setdefault(name, _Restarts())
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

    def count(self, name: str) -> int:
        """How often `name` was restarted."""
        record = self._records.get(name)
        return record.total if record else 0
