"""How event log files are named and rotated: the contract between `EventLog` and the exporter.

Each worker process writes `events-<pid>.jsonl` (the live file). Past its size limit the live file
is renamed to the next free `events-<pid>.jsonl.<k>`, k = 1, 2, ...: **.1 is the oldest part**,
a higher number is newer, and the live file is the newest of all. An existing rotated file is
never renamed or overwritten (unlike Python's RotatingFileHandler, where .1 is the newest), so a
copy taken while the service runs never sees a part change its name.
"""

from __future__ import annotations

import re
from pathlib import Path

PREFIX = "events-"
SUFFIX = ".jsonl"
GLOB = f"{PREFIX}*{SUFFIX}*"
_NAME = re.compile(rf"^{PREFIX}(?P<stem>.+?){re.escape(SUFFIX)}(?:\.(?P<part>[1-9][0-9]*))?$")


def live_name(pid: int) -> str:
    return f"{PREFIX}{pid}{SUFFIX}"


def rotated_name(live: str, part: int) -> str:
    return f"{live}.{part}"


def next_rotated(live: Path) -> Path:
    """The name the live file takes when it rotates: the first free `.k`."""
    part = 1
    while live.with_name(rotated_name(live.name, part)).exists():
        part += 1
    return live.with_name(rotated_name(live.name, part))


def is_log_file(name: str) -> bool:
    return _NAME.match(name) is not None


def order_key(path: Path) -> tuple[str, str, int, int]:
    """Sort key that puts one log's parts oldest first: .1, .2, ..., then the live file.

    Files that do not follow the naming (e.g. the course's `data.json`, named explicitly) sort
    after the log files of their folder, by name.
    """
    match = _NAME.match(path.name)
    if match is None:
        return (str(path.parent), "\uffff" + path.name, 0, 0)
    part = match.group("part")
    live = part is None
    return (str(path.parent), match.group("stem"), int(live), 0 if live else int(part))
