"""`python -m trainer prepare|train|recommend|deploy|rollback|run` (see docs/trainer.md).

Before anything else the process re-executes itself once with glibc's allocator told to keep
freed memory (MALLOC_MMAP_MAX_=0, MALLOC_TRIM_THRESHOLD_): CORE allocates and frees ~100 MB
score matrices every batch, and with the default allocator a large share of CPU time went to
page faults. glibc reads these variables only at process start, hence the re-exec. Set
BOTIFY_TRAINER_MALLOC=0 to skip it.
"""

from __future__ import annotations

import os
import sys

ALLOCATOR_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(64 << 30)}


def _reexec_with_allocator_settings() -> None:
    if os.environ.get("BOTIFY_TRAINER_MALLOC") == "0" or sys.platform != "linux":
        return
    if any(k in os.environ for k in ALLOCATOR_ENV):  # already set (by us or by the user)
        return
    env = {**os.environ, **ALLOCATOR_ENV}
    os.execve(sys.executable, [sys.executable, "-m", "trainer", *sys.argv[1:]], env)


if __name__ == "__main__":
    _reexec_with_allocator_settings()
    from trainer.cli import cli

    cli(prog_name="python -m trainer")
