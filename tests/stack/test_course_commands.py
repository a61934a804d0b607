"""The seed's and the course's command lines, exactly as they are typed, against a real local stack
(embedded Redis, 2 gunicorn replicas, nginx in front):

    python -m sim.run --episodes N --config config/env.yml single --recommender remote --seed S
    python -m sim.run --episodes N --config config/env.yml multi --processes N
    python script/dataclient.py --recommender 2 log2local DIR

`config/env.yml` is the repository's own, copied into a working folder with the world and the
service's URL edited, as a user would. The last command pulls with `docker`; here a stand-in
`docker` on PATH answers `ps`, `inspect` and `cp` from the local stack's log folders (the compose
test, `make compose-test`, runs it against real containers)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ops.stack import LocalStack
from sim.world import WorldShape, generate
from tests.stack.conftest import needs_nginx, read_events

REPO = Path(__file__).resolve().parents[2]
SHAPE = WorldShape(tracks=400, users=60, dim=8)

FAKE_DOCKER = textwrap.dedent('''\
    #!{python}
    """docker ps / inspect / cp for the replicas of a local stack under $FAKE_DOCKER_LOGS."""
    import os, shutil, sys
    root = os.environ["FAKE_DOCKER_LOGS"]
    args = sys.argv[1:]
    if args[0] == "ps":
        for n in (1, 2):
            print(f"botify-recommender-{{n}}\\t{{n}}")
    elif args[0] == "inspect":
        n = args[-1].rsplit("-", 1)[1]
        print(f"PATH=/usr/bin\\nBOTIFY_LOG_DIR={{root}}/recommender-{{n}}")
    elif args[0] == "cp":
        source = args[1].split(":", 1)[1].rstrip("/.")
        shutil.copytree(source, args[2], dirs_exist_ok=True)
    else:
        sys.exit(f"fake docker: {{args}} not supported")
''')


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A working folder with config/env.yml and data/world, and a stack serving that world."""
    work = tmp_path_factory.mktemp("course")
    generate(5, SHAPE).save(work / "data" / "world")
    logs = work / "logs"
    experiments = work / "experiments.yml"  # catalog-only arms: served without any lists
    experiments.write_text("route: ONE\nexperiments:\n  - name: ONE\n    arms:\n"
                           "      - {name: C, recommender: sticky_artist}\n")  # fmt: skip
    stack = LocalStack(work / "data" / "world", experiments, logs, replicas=2, nginx="on")
    with stack:
        env_yml = (REPO / "config" / "env.yml").read_text()
        for key, value in (("tracks", SHAPE.tracks), ("users", SHAPE.users), ("dim", SHAPE.dim)):
            env_yml = re.sub(rf"(?m)^(  {key}:) \d+", rf"\1 {value}", env_yml)
        env_yml = re.sub(r"(?m)^(  url:) \S+", rf"\1 {stack.url}", env_yml)
        (work / "config").mkdir()
        (work / "config" / "env.yml").write_text(env_yml)
        yield work, stack, logs


def command(line: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """`line` as typed (`python ...`), run by this interpreter in `cwd`."""
    program, *args = shlex.split(line)
    assert program == "python"
    environ = {k: v for k, v in os.environ.items() if k != "BOTIFY_URL"}
    done = subprocess.run([sys.executable, *args], cwd=cwd, env={**environ, **env},
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def sessions_and_steps(stdout: str) -> tuple[int, int]:
    match = re.search(r"## remote: (\d+) sessions, (\d+) steps", stdout)
    assert match, stdout
    return int(match.group(1)), int(match.group(2))


@needs_nginx
def test_the_course_command_lines(lab, tmp_path):
    work, stack, logs = lab
    single = command("python -m sim.run --episodes 30 --config config/env.yml single "
                     "--recommender remote --seed 7", work)  # fmt: skip
    assert sessions_and_steps(single.stdout)[0] == 30
    multi = command("python -m sim.run --episodes 20 --config config/env.yml multi --processes 2",
                    work)  # fmt: skip
    assert sessions_and_steps(multi.stdout)[0] == 40
    sessions = 30 + 40
    steps = sessions_and_steps(single.stdout)[1] + sessions_and_steps(multi.stdout)[1]

    # the replicas have flushed every acknowledged line: each step is a `next`, each session a `last`
    served = read_events(logs)
    assert sum(e["message"] == "last" for e in served) == sessions
    assert sum(e["message"] == "next" for e in served) == steps
    assert {e["replica"] for e in served} <= {"recommender-1", "recommender-2"}

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER.format(python=sys.executable))
    (bin_dir / "docker").chmod(0o755)
    pulled = tmp_path / "pulled"
    done = command(f"python script/dataclient.py --recommender 2 log2local {pulled}", REPO,
                   PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                   FAKE_DOCKER_LOGS=str(logs))  # fmt: skip
    assert "## Finished: 2 replica folder(s)" in done.stdout
    assert sorted(p.name for p in pulled.iterdir()) == ["recommender-1", "recommender-2"]
    copied = read_events(pulled)
    key = lambda e: json.dumps(e, sort_keys=True)  # noqa: E731 (a sort key of parsed events)
    assert sorted(copied, key=key) == sorted(served, key=key)
