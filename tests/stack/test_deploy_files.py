"""The deployment files: one nginx.conf for compose and the local stack, the compose file, the
Dockerfile and the gunicorn settings. What Docker itself would do is checked as far as it can be
without a Docker engine: the config nginx would run (`nginx -t`), the image's command (run here
against a real Redis), the compose file's structure (and `docker compose config` when present)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from botify import gunicorn_conf
from botify.redis_server import free_port
from botify.stack import NGINX_TEMPLATE, StackError, find_nginx, render_nginx_conf, upstream_servers
from tests.stack.conftest import needs_nginx

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDERS = {
    "BOTIFY_NGINX_PORT",
    "BOTIFY_NGINX_RUN_DIR",
    "BOTIFY_NGINX_ERROR_LOG",
    "BOTIFY_UPSTREAM",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def local_values(run_dir: Path, port: int, upstream: str) -> dict[str, str]:
    return {
        "BOTIFY_NGINX_PORT": f"127.0.0.1:{port}",
        "BOTIFY_NGINX_RUN_DIR": str(run_dir),
        "BOTIFY_NGINX_ERROR_LOG": str(run_dir / "error.log"),
        "BOTIFY_UPSTREAM": upstream,
    }


# -- nginx.conf ---------------------------------------------------------------------------------
def test_template_placeholders_are_exactly_the_documented_ones():
    text = NGINX_TEMPLATE.read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert set(re.findall(r"\$\{(\w+)\}", body)) == PLACEHOLDERS
    # envsubst in the nginx image also replaces the bare $NAME form: none may hide in the file.
    assert not re.search(r"\$BOTIFY_", body)


def test_render_fills_every_placeholder_and_refuses_a_missing_one(tmp_path):
    values = local_values(tmp_path, 8000, upstream_servers(["127.0.0.1:1", "127.0.0.1:2"]))
    conf = render_nginx_conf(NGINX_TEMPLATE.read_text(), values)
    assert not [line for line in conf.splitlines() if "${" in line and not line.startswith("#")]
    assert "server 127.0.0.1:1 max_fails=1 fail_timeout=2s; server 127.0.0.1:2" in conf
    assert "$request_id" in conf and "$host" in conf  # nginx's own variables untouched
    del values["BOTIFY_UPSTREAM"]
    with pytest.raises(StackError, match="BOTIFY_UPSTREAM"):
        render_nginx_conf(NGINX_TEMPLATE.read_text(), values)


@pytest.mark.skipif(shutil.which("envsubst") is None, reason="GNU envsubst (gettext-base) missing")
def test_compose_rendering_matches_the_nginx_images_envsubst(compose):
    """The image runs `envsubst "$defined_envs"` over the template with BOTIFY_* names only."""
    env = compose["services"]["nginx"]["environment"]
    values = {k: str(v) for k, v in env.items() if re.match(env["NGINX_ENVSUBST_FILTER"], k)}
    assert set(values) == PLACEHOLDERS
    shell_format = " ".join(f"${{{name}}}" for name in values)
    template = NGINX_TEMPLATE.read_text()
    by_envsubst = subprocess.run(
        ["envsubst", shell_format],
        input=template,
        env={"PATH": os.environ["PATH"], **values},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert render_nginx_conf(template, values) == by_envsubst
    assert "server recommender:8000 resolve" in by_envsubst


@needs_nginx
def test_local_rendering_passes_nginx_t(tmp_path):
    values = local_values(tmp_path, free_port(), upstream_servers(["127.0.0.1:9", "127.0.0.1:10"]))
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_nginx_conf(NGINX_TEMPLATE.read_text(), values))
    result = subprocess.run(
        [find_nginx(), "-t", "-p", f"{tmp_path}/", "-c", str(conf), "-e", str(tmp_path / "e.log")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


# -- docker-compose.yml -------------------------------------------------------------------------
def test_compose_redis_is_not_published_and_recommender_scales(compose):
    services = compose["services"]
    assert "ports" not in services["redis"]
    recommender = services["recommender"]
    # --scale needs no fixed name and no host port (N replicas cannot share either).
    assert "container_name" not in recommender and "ports" not in recommender
    assert recommender["build"] == "."
    assert recommender["depends_on"]["redis"]["condition"] == "service_healthy"
    assert recommender["depends_on"]["world"]["condition"] == "service_completed_successfully"
    assert recommender["environment"]["BOTIFY_LOG_ROOT"] == "/logs"
    assert "logs:/logs" in recommender["volumes"]
    # Only nginx is published.
    published = [name for name, service in services.items() if "ports" in service]
    assert published == ["nginx"]


def test_compose_nginx_uses_the_same_conf_and_resolves_every_replica(compose):
    nginx = compose["services"]["nginx"]
    assert "./deploy/nginx.conf:/etc/nginx/templates/nginx.conf.template:ro" in nginx["volumes"]
    assert nginx["environment"]["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/nginx"
    upstream = nginx["environment"]["BOTIFY_UPSTREAM"]
    assert upstream.startswith("server recommender:8000 resolve")
    assert "resolver 127.0.0.11" in NGINX_TEMPLATE.read_text()  # Docker's DNS
    major, minor = (int(x) for x in nginx["image"].split(":")[1].split(".")[:2])
    assert (major, minor) >= (1, 28)  # `resolve` in open-source nginx: 1.27.3+
    assert nginx["depends_on"]["recommender"]["condition"] == "service_healthy"


def test_compose_trainer_profile_reads_logs_read_only(compose):
    trainer = compose["services"]["trainer"]
    assert trainer["profiles"] == ["trainer"]
    assert trainer["build"] == {"context": ".", "dockerfile": "trainer/Dockerfile"}
    assert "logs:/logs:ro" in trainer["volumes"]
    assert trainer["command"][:2] == ["sh", "-c"]
    assert trainer["command"][2] == (
        "python -m script.export /logs --out /work/events && "
        "python -m trainer run --data /work/events --work /work --redis-url redis://redis:6379/0"
    )
    assert set(compose["volumes"]) >= {"logs", "world", "trainer-work"}


def test_compose_world_is_generated_once_unless_mounted(compose):
    world = compose["services"]["world"]
    assert world["command"][-1] == (
        "test -s /world/tracks.json || python -m sim.world --out /world --seed 42"
    )
    assert world["volumes"] == ["${BOTIFY_WORLD:-world}:/world"]


def _compose_cli() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


@pytest.mark.skipif(_compose_cli() is None, reason="neither `docker compose` nor docker-compose")
def test_docker_compose_config_validates(tmp_path):
    cli = _compose_cli()
    text = (ROOT / "docker-compose.yml").read_text()
    if cli == ["docker-compose"]:
        # Compose v1 (Debian's docker-compose) predates the top-level `name:` of the Compose spec.
        text = re.sub(r"(?m)^name: .*\n", "", text)
    (tmp_path / "docker-compose.yml").write_text(text)
    result = subprocess.run(
        [*cli, "-f", str(tmp_path / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert "ports" not in rendered["services"]["redis"]


# -- Dockerfile -----------------------------------------------------------------------------------
def dockerfile() -> dict[str, list[str]]:
    """Instruction -> its arguments (continuation lines joined), in file order."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.setdefault(word.upper(), []).append(rest.strip())
    return out


def test_dockerfile_is_slim_non_root_without_the_train_extra():
    instructions = dockerfile()
    assert instructions["FROM"] == ["python:3.11-slim"]
    assert instructions["USER"][-1] not in ("root", "0")
    installs = " ".join(instructions["RUN"])
    assert "pip install ." in installs and "train" not in installs
    assert "/health" in instructions["HEALTHCHECK"][0]


def test_dockerfile_command_serves_against_a_real_redis(
    world_dir, sticky_experiments, redis_url, tmp_path
):
    """The image's CMD and HEALTHCHECK, run here (venv instead of the image's site-packages)."""
    instructions = dockerfile()
    command = json.loads(instructions["CMD"][-1])
    assert command[:3] == ["gunicorn", "-c", "python:botify.gunicorn_conf"]
    port = free_port()
    command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
    healthcheck = json.loads(instructions["HEALTHCHECK"][0].split("CMD", 1)[1])
    healthcheck = [arg.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for arg in healthcheck]
    assert healthcheck[0] == "python"

    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTIFY_")}
    env.update(
        BOTIFY_REDIS_URL=redis_url,
        BOTIFY_CATALOG=str(world_dir / "tracks.json"),
        BOTIFY_EXPERIMENTS=str(sticky_experiments),
        BOTIFY_LOG_ROOT=str(tmp_path / "logs"),  # as in the image: the replica names its folder
        BOTIFY_REPLICA="recommender-7",
        HOME=str(tmp_path / "home"),  # gunicorn would put its control socket here
    )
    env.pop("XDG_RUNTIME_DIR", None)
    server = subprocess.Popen(
        [sys.executable, "-m", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while subprocess.run([sys.executable, *healthcheck[1:]], capture_output=True).returncode:
            assert server.poll() is None, server.stderr.read().decode()
            assert time.monotonic() < deadline, "the image's HEALTHCHECK never passed"
            time.sleep(0.2)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/next/5",
            data=b'{"track": 7, "time": 0.5}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["user"] == 5
    finally:
        os.killpg(server.pid, 15)
        server.wait(20)
        server.stderr.close()
    events = list((tmp_path / "logs" / "recommender-7").glob("events-*.jsonl"))
    assert len(events) == 1
    assert json.loads(events[0].read_text())["replica"] == "recommender-7"
    # No control socket: replicas sharing a home would take each other's, and the image's user
    # has no home to write to.
    assert not (tmp_path / "home").exists()


# -- gunicorn settings ----------------------------------------------------------------------------
def test_gunicorn_policy():
    assert gunicorn_conf.preload_app is True
    assert gunicorn_conf.worker_class == "botify.worker.BufferedThreadWorker"
    assert gunicorn_conf.accesslog is None
    assert gunicorn_conf.keepalive > 60  # outlives nginx's upstream keepalive_timeout 60s
    assert gunicorn_conf.graceful_timeout < 10  # inside Docker's default stop grace period
    assert gunicorn_conf.control_socket_disable is True


@pytest.mark.parametrize(
    ("fqdn", "expected"),
    [
        ("botify-recommender-2.botify_default", "recommender-2"),
        ("botify_recommender_13.botify_default", "recommender-13"),  # compose v1 naming
        ("some-other-host", "c0ffee123456"),
    ],
)
def test_container_replica_name_from_dockers_reverse_dns(fqdn, expected):
    name = gunicorn_conf.container_replica_name(
        hostname=lambda: "c0ffee123456",
        address_of=lambda host: "172.18.0.4",
        reverse_lookup=lambda address: (fqdn, [], [address]),
    )
    assert name == expected


def test_container_replica_name_without_reverse_dns_is_the_hostname():
    def no_dns(address):
        raise OSError("no PTR record")

    name = gunicorn_conf.container_replica_name(
        hostname=lambda: "abc", address_of=lambda host: "10.0.0.1", reverse_lookup=no_dns
    )
    assert name == "abc"


def test_log_root_gives_each_replica_its_own_folder():
    environ = {"BOTIFY_LOG_ROOT": "/logs", "BOTIFY_REPLICA": "recommender-3"}
    gunicorn_conf._name_this_replica(environ)
    assert environ["BOTIFY_LOG_DIR"] == "/logs/recommender-3"
    explicit = {"BOTIFY_LOG_ROOT": "/logs", "BOTIFY_LOG_DIR": "/elsewhere"}
    gunicorn_conf._name_this_replica(explicit)
    assert explicit["BOTIFY_LOG_DIR"] == "/elsewhere"
    assert "BOTIFY_REPLICA" not in explicit
