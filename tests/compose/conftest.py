"""The compose test runs only through `make compose-test` (BOTIFY_COMPOSE_TEST=1): it builds
images and runs the whole stack in Docker for many minutes. Without a Docker engine it is
skipped; with only the old docker-compose v1 it stops with an error saying v2 is needed."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def _run(*command: str) -> subprocess.CompletedProcess | None:
    if shutil.which(command[0]) is None:
        return None
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    ours = [item for item in items if str(item.fspath).startswith(here)]
    if not ours:
        return
    reason = None
    if os.environ.get("BOTIFY_COMPOSE_TEST") != "1":
        reason = "the compose test runs with `make compose-test` (Docker engine, Compose v2)"
    else:
        info = _run("docker", "info", "--format", "{{.ServerVersion}}")
        if info is None or info.returncode != 0:
            detail = "docker is not installed" if info is None else info.stderr.strip()[:300]
            reason = f"no Docker engine available ({detail}); the compose test needs one"
        else:
            version = _run("docker", "compose", "version", "--short")
            if version is None or version.returncode != 0:
                v1 = _run("docker-compose", "version", "--short")
                found = f"docker-compose {v1.stdout.strip()} (v1)" if v1 else "no compose"
                pytest.exit(
                    f"Compose v2 is needed (`docker compose`); found {found}, which refuses "
                    "docker-compose.yml's top-level `name:`. Install the compose plugin "
                    "(Debian: docker-compose-plugin or docker-compose >= 2).",
                    returncode=2,
                )
    if reason:
        for item in ours:
            item.add_marker(pytest.mark.skip(reason=reason))
