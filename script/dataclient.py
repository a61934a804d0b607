"""Pull the recommender replicas' event logs to a local folder (seed-compatible), and export them.

    python script/dataclient.py --recommender 2 log2local DIR         # compose: docker cp
    python script/dataclient.py --local-logs LOGROOT log2local DIR    # a local stack's log root
    python script/dataclient.py export DIR [DIR ...] --out DATASET    # = python -m script.export

``log2local`` puts replica i's log folder (rotated files included) at ``DIR/recommender-<i>``.
With Docker the containers are the compose service ``recommender``'s (found by its compose
labels, optionally of one ``--project``); replica n's log folder is read from its container's
environment (``BOTIFY_LOG_DIR``, else ``$BOTIFY_LOG_ROOT/recommender-<n>`` as in the compose file,
else ``/app/log``) unless ``--log-dir`` says otherwise. Pulling again into the same DIR
refreshes the copies; the exporter removes the lines two pulls have in common.
Runs as a file (the seed's way) or as ``python -m script.dataclient``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import click  # noqa: E402

from script import export as export_cli  # noqa: E402

DEFAULT_CONTAINER_LOG_DIR = "/app/log"
SERVICE = "recommender"
Runner = Callable[[Sequence[str]], str]


class PullError(Exception):
    """The logs could not be pulled (CLI exit code 1)."""


def run_command(command: Sequence[str]) -> str:
    """Run a command and return its stdout; raise PullError with its stderr when it fails."""
    if shutil.which(command[0]) is None:
        raise PullError(
            f"{command[0]!r} is not installed or not on PATH; to read a local stack's logs "
            "use --local-logs LOGROOT"
        )
    result = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip()
        raise PullError(f"`{' '.join(command)}` failed (exit {result.returncode}): {detail}")
    return result.stdout


def list_containers(run: Runner, project: str | None = None) -> dict[int, str]:
    """Replica number -> container name of the compose service ``recommender``."""
    command = ["docker", "ps", "--filter", f"label=com.docker.compose.service={SERVICE}"]
    if project:
        command += ["--filter", f"label=com.docker.compose.project={project}"]
    command += ["--format", '{{.Names}}\t{{.Label "com.docker.compose.container-number"}}']
    containers: dict[int, str] = {}
    for line in run(command).splitlines():
        if not line.strip():
            continue
        name, _, number = line.partition("\t")
        containers[int(number) if number.strip().isdigit() else len(containers) + 1] = name.strip()
    return dict(sorted(containers.items()))


def container_log_dir(run: Runner, container: str, number: int) -> str:
    """The replica's own log folder inside its container, from the container's environment.

    BOTIFY_LOG_DIR when set; else ``<BOTIFY_LOG_ROOT>/recommender-<n>`` (the compose file gives
    all replicas one shared volume, each writing its own folder); else /app/log.
    """
    env = run(
        ["docker", "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", container]
    )
    values = dict(line.partition("=")[::2] for line in env.splitlines() if "=" in line)
    if values.get("BOTIFY_LOG_DIR", "").strip():
        return values["BOTIFY_LOG_DIR"].strip()
    if values.get("BOTIFY_LOG_ROOT", "").strip():
        return f"{values['BOTIFY_LOG_ROOT'].strip().rstrip('/')}/{SERVICE}-{number}"
    return DEFAULT_CONTAINER_LOG_DIR


def pull_from_docker(
    target: Path,
    replicas: int | None,
    log_dir: str | None = None,
    project: str | None = None,
    run: Runner = run_command,
    echo: bool = True,
) -> list[Path]:
    """``docker cp`` every replica's log folder to ``target/recommender-<i>``."""
    try:
        containers = list_containers(run, project)
    except PullError as error:
        raise PullError(
            f"{error}\nIs the Docker engine running? For a local stack use --local-logs LOGROOT."
        ) from error
    if not containers:
        raise PullError(f"no running container of the compose service {SERVICE!r}")
    containers = select_replicas(
        containers, replicas, f"found {len(containers)}: " + ", ".join(containers.values())
    )
    target.mkdir(parents=True, exist_ok=True)
    pulled = []
    for number, container in containers.items():
        source = (log_dir or container_log_dir(run, container, number)).rstrip("/")
        destination = target / f"{SERVICE}-{number}"
        command = ["docker", "cp", f"{container}:{source}/.", str(destination)]
        if echo:
            print(" docker > " + " ".join(command))
        run(command)
        pulled.append(destination)
    return pulled


T = TypeVar("T")


def select_replicas(found: dict[int, T], replicas: int | None, what_is_there: str) -> dict[int, T]:
    """All of `found` (replica number -> source), or exactly replicas 1..`replicas`."""
    if replicas is None:
        return found
    missing = [i for i in range(1, replicas + 1) if i not in found]
    if missing:
        raise PullError(
            f"asked for {replicas} replica(s), missing "
            + ", ".join(f"{SERVICE}-{i}" for i in missing)
            + f"; {what_is_there}"
        )
    return {i: found[i] for i in range(1, replicas + 1)}


def pull_from_local(target: Path, log_root: Path, replicas: int | None = None) -> list[Path]:
    """Copy a local stack's ``log_root/recommender-<i>`` folders (all, or 1..replicas)."""
    if not log_root.is_dir():
        raise PullError(f"no log root at {log_root}")
    found = {
        int(p.name.rpartition("-")[2]): p
        for p in log_root.glob(f"{SERVICE}-*")
        if p.is_dir() and p.name.rpartition("-")[2].isdigit()
    }
    if not found:
        raise PullError(f"no {SERVICE}-<i> folder under {log_root}")
    found = select_replicas(found, replicas, f"{log_root} has " + ", ".join(
        f"{SERVICE}-{i}" for i in sorted(found)))  # fmt: skip
    pulled = []
    for number, folder in sorted(found.items()):
        destination = target / f"{SERVICE}-{number}"
        shutil.copytree(folder, destination, dirs_exist_ok=True)
        pulled.append(destination)
    return pulled


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--recommender", type=click.IntRange(1), default=None, metavar="N",
              help="number of recommender replicas to pull (default: all found)")  # fmt: skip
@click.option("--local-logs", type=click.Path(path_type=Path), default=None, metavar="LOGROOT",
              help="read a local stack's log root instead of Docker containers")  # fmt: skip
@click.option("--project", default=None, help="compose project name (Docker only)")
@click.option("--echo/--no-echo", default=True, show_default=True, help="print docker commands")
@click.pass_context
def cli(ctx, recommender: int | None, local_logs: Path | None, project: str | None,
        echo: bool) -> None:  # fmt: skip
    """Pull recommender logs; export them to Parquet."""
    ctx.obj = {"recommender": recommender, "local_logs": local_logs, "project": project,
               "echo": echo}  # fmt: skip


@cli.command("log2local")
@click.option("--log-dir", default=None,
              help="log folder inside the containers (default: from their env)")  # fmt: skip
@click.argument("local_dir", type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
def log2local(pulling: dict, log_dir: str | None, local_dir: Path) -> None:
    """Copy every replica's logs to LOCAL_DIR/recommender-<i>."""
    try:
        if pulling["local_logs"] is not None:
            pulled = pull_from_local(local_dir, pulling["local_logs"], pulling["recommender"])
        else:
            pulled = pull_from_docker(local_dir, pulling["recommender"], log_dir,
                                      pulling["project"], echo=pulling["echo"])  # fmt: skip
    except PullError as error:
        raise click.ClickException(str(error)) from error
    files = sum(1 for folder in pulled for p in folder.rglob("*") if p.is_file())
    click.echo(f"## Finished: {len(pulled)} replica folder(s), {files} file(s) in {local_dir}")


cli.add_command(export_cli.cli, "export")


if __name__ == "__main__":
    cli(prog_name="dataclient.py")
