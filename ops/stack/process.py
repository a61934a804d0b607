"""One supervised process of the local stack (and its process group), and the probes the stack
uses on it: an HTTP status and the tail of its log."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger("ops.stack")


class StackError(RuntimeError):
    """The stack could not start, or a part of it died."""


def http_status(url: str, timeout: float = 1.0) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, ValueError):
        return None


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Child:
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
