"""The event log: JSON lines, one file per worker process, rotated by size, nothing lost.

Each worker writes `<dir>/events-<pid>.jsonl` (names and rotation order: `botify.logfiles`). The
file is opened on the first event in the process that writes it (so a gunicorn master that built
the app before forking never holds it), and reopened if the pid changes. The lines of one request
(one line, or one per step of a batch) are one `write(2)` on an O_APPEND descriptor, done before
the response is returned: once a client has its 200, its lines are in the kernel and survive even
a SIGKILLed worker; there is no user-space buffer to flush at shutdown (the descriptor is still
closed at exit). Past `max_bytes` the file is renamed to the next free `events-<pid>.jsonl.<k>`
(k = 1, 2, ... oldest first; never overwritten) and a new file begins, always between two writes.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from botify import logfiles
from botify.event_schema import Event, encode


class EventLog:
    def __init__(self, directory: str | os.PathLike, max_bytes: int = 64 * 2**20):
        self.directory = Path(directory)
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pid: int | None = None
        self._size = 0
        atexit.register(self.close)

    @property
    def path(self) -> Path:
        return self.directory / logfiles.live_name(os.getpid())

    def write(self, events: Event | Iterable[Event]) -> None:
        """Append the events' lines in one write (all encoded first: a bad event writes nothing)."""
        if isinstance(events, Event):
            events = (events,)
        data = b"".join(encode(event) for event in events)
        if not data:
            return
        with self._lock:
            fd = self._open()
            view = memoryview(data)
            while view:  # a regular file takes it whole; loop only for the pathological case
                view = view[os.write(fd, view) :]
            self._size += len(data)
            if self._size >= self.max_bytes:
                self._rotate()

    def _open(self) -> int:
        pid = os.getpid()
        if self._fd is None or self._pid != pid:
            # After a fork the inherited descriptor (if any) belongs to the parent's file.
            self.directory.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._pid = pid
            self._size = os.fstat(self._fd).st_size
        return self._fd

    def _rotate(self) -> None:
        path = self.path
        os.rename(path, logfiles.next_rotated(path))
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None

    def close(self) -> None:
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None
