"""The deployment files: one nginx.conf for compose and the local stack, the compose file, the
Dockerfile and the gunicorn settings. What Docker itself would do is checked as far as it can be
without a Docker engine: the config nginx would run (`nginx -t`), the image's command (run here
against a real Redis), the compose file's structure (and `docker compose config` when present)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from ops import dockerdns, gunicorn_conf
from ops.redis_server import free_port
from ops.stack import NGINX_TEMPLATE, StackError, find_nginx, render_nginx_conf, upstream_servers
from tests.stack.conftest import needs_nginx

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_SCRIPT = ROOT / "deploy" / "nginx-upstream.sh"
UPSTREAM_FILE = "/etc/nginx/botify-upstream.conf"  # the script's default UPSTREAM_FILE
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
    assert not {k for k in env if k.startswith("BOTIFY_")} - PLACEHOLDERS
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
    assert f"include {UPSTREAM_FILE};" in by_envsubst


def assert_nginx_t(tmp_path, values: dict) -> None:
    """The template rendered with `values` passes the real `nginx -t`."""
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_nginx_conf(NGINX_TEMPLATE.read_text(), values))
    result = subprocess.run(
        [find_nginx(), "-t", "-p", f"{tmp_path}/", "-c", str(conf), "-e", str(tmp_path / "e.log")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@needs_nginx
def test_local_rendering_passes_nginx_t(tmp_path):
    values = local_values(tmp_path, free_port(), upstream_servers(["127.0.0.1:9", "127.0.0.1:10"]))
    assert_nginx_t(tmp_path, values)


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


def test_compose_nginx_has_one_server_line_per_replica_from_the_upstream_script(compose):
    """One `server recommender:8000 resolve` line is ONE hash target: nginx round-robins over
    its addresses, so users' requests alternated between replicas. The script writes a line per
    replica instead; nginx.conf includes the file it writes."""
    nginx = compose["services"]["nginx"]
    assert "./deploy/nginx.conf:/etc/nginx/templates/nginx.conf.template:ro" in nginx["volumes"]
    assert "./deploy/nginx-upstream.sh:/botify/nginx-upstream.sh:ro" in nginx["volumes"]
    assert nginx["entrypoint"] == ["sh", "/botify/nginx-upstream.sh"]
    assert nginx["command"] == ["nginx", "-g", "daemon off;"]  # an entrypoint drops the CMD
    assert nginx["environment"]["NGINX_ENVSUBST_OUTPUT_DIR"] == "/etc/nginx"
    assert nginx["environment"]["BOTIFY_UPSTREAM"] == f"include {UPSTREAM_FILE};"
    assert f"UPSTREAM_FILE:-{UPSTREAM_FILE}}}" in UPSTREAM_SCRIPT.read_text()
    assert "resolve" not in NGINX_TEMPLATE.read_text().split("upstream botify_replicas")[1]
    assert nginx["depends_on"]["recommender"]["condition"] == "service_healthy"


def upstream_script(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(UPSTREAM_SCRIPT), "--print"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_upstream_script_writes_a_line_per_address_through_real_name_resolution():
    printed = upstream_script(UPSTREAM_SERVICE="localhost", UPSTREAM_PORT="8123")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == "server 127.0.0.1:8123 max_fails=1 fail_timeout=2s;\n"
    missing = upstream_script(UPSTREAM_SERVICE="no-such-host.invalid")
    assert (missing.returncode, missing.stdout) == (0, "")  # the entrypoint then waits


@needs_nginx
def test_compose_rendering_with_the_scripts_lines_passes_nginx_t(compose, tmp_path):
    lines = upstream_script(UPSTREAM_SERVICE="localhost", UPSTREAM_PORT="8123").stdout
    (tmp_path / "upstream.conf").write_text(lines + lines.replace("127.0.0.1", "127.0.0.2"))
    env = compose["services"]["nginx"]["environment"]
    upstream = env["BOTIFY_UPSTREAM"].replace(UPSTREAM_FILE, str(tmp_path / "upstream.conf"))
    values = local_values(tmp_path, free_port(), upstream)
    assert_nginx_t(tmp_path, values)


def test_compose_redis_requires_the_password_which_no_url_carries(compose):
    services = compose["services"]
    redis_service = services["redis"]
    password = redis_service["environment"]["BOTIFY_REDIS_PASSWORD"]
    assert password == "${BOTIFY_REDIS_PASSWORD:-botify-demo}"
    start = redis_service["command"][2]
    # requirepass from a private file, not argv (ps, docker top); the check authenticates too
    assert "requirepass" in start and "umask 077" in start and "--requirepass" not in start
    assert "REDISCLI_AUTH" in redis_service["healthcheck"]["test"][1]
    for name in ("recommender", "keeper", "trainer"):
        assert services[name]["environment"]["BOTIFY_REDIS_PASSWORD"] == password, name
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"rediss?://[^/\s]*@", text)  # never a password in a URL


def test_compose_keeper_restores_from_the_journal_the_trainer_writes(compose):
    keeper, trainer = compose["services"]["keeper"], compose["services"]["trainer"]
    assert keeper["image"] == compose["services"]["recommender"]["image"]
    assert keeper["command"] == [
        "python", "-m", "ops.keeper", "--redis-url", "redis://redis:6379/0",
        "--journal", "/journal",
    ]  # fmt: skip
    assert keeper["volumes"] == ["journal:/journal:ro"]
    assert keeper["healthcheck"] == {"disable": True}
    assert keeper["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "journal:/journal" in trainer["volumes"]
    assert trainer["command"][2].endswith("--journal /journal")
    assert "journal" in compose["volumes"]
    # the trainer image owns /journal, so a fresh volume is writable by the trainer's user
    assert "mkdir -p /work /journal" in (ROOT / "trainer" / "Dockerfile").read_text()


def test_compose_trainer_profile_reads_logs_read_only(compose):
    trainer = compose["services"]["trainer"]
    assert trainer["profiles"] == ["trainer"]
    assert trainer["build"]["context"] == "." and trainer["build"]["dockerfile"] == (
        "trainer/Dockerfile"
    )
    # the torch index is a build argument (a local one where the public one is out of reach)
    assert trainer["build"]["args"] == {
        "TORCH_INDEX": "${TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
    }
    assert "ARG TORCH_INDEX=" in (ROOT / "trainer" / "Dockerfile").read_text()
    assert "logs:/logs:ro" in trainer["volumes"]
    assert trainer["command"][:2] == ["sh", "-c"]
    assert trainer["command"][2] == (
        "python -m script.export /logs --out /work/events && "
        "python -m trainer run --data /work/events --work /work --redis-url redis://redis:6379/0"
        " --journal /journal"
    )
    assert set(compose["volumes"]) >= {"logs", "world", "trainer-work", "journal"}


def test_compose_world_is_generated_once_unless_mounted(compose):
    world = compose["services"]["world"]
    assert world["command"][-1] == (
        "test -s /world/tracks.json || python -m sim.world --out /world --seed 42"
    )
    assert world["volumes"] == ["${BOTIFY_WORLD:-world}:/world"]


def _compose_v2() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_v2(), reason="Compose v2 (`docker compose`) is not installed")
def test_docker_compose_config_validates(tmp_path):
    """Compose v2 accepts the file (v1, Debian's docker-compose 1.29, refuses `name:`; the
    README and `make compose-test` say v2 is needed)."""
    result = subprocess.run(
        ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "BOTIFY_REDIS_PASSWORD": "s3cret-for-the-test"},
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert rendered["name"] == "botify"
    assert "ports" not in rendered["services"]["redis"]
    env = rendered["services"]["recommender"]["environment"]
    assert env["BOTIFY_REDIS_PASSWORD"] == "s3cret-for-the-test"
    assert rendered["services"]["nginx"]["ports"][0]["target"] == 80


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
    # the dependencies (one layer, from pyproject), then the project itself; no train extra
    assert "['project']['dependencies']" in installs and "pip install --no-deps ." in installs
    assert "train" not in installs
    assert "/health" in instructions["HEALTHCHECK"][0]


def test_dockerfile_command_serves_against_a_real_redis(
    world_dir, sticky_experiments, redis_url, tmp_path
):
    """The image's CMD and HEALTHCHECK, run here (venv instead of the image's site-packages)."""
    instructions = dockerfile()
    command = json.loads(instructions["CMD"][-1])
    assert command[:3] == ["gunicorn", "-c", "python:ops.gunicorn_conf"]
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
    assert gunicorn_conf.worker_class == "ops.worker.BufferedThreadWorker"
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
        reverse_lookup=lambda address: fqdn,
    )
    assert name == expected


class PtrServer(threading.Thread):
    """A real DNS server on a loopback UDP port answering every PTR question with one name, the
    way Docker's embedded DNS answers for a container (compressed names), or NXDOMAIN."""

    def __init__(self, ptr: str | None):
        super().__init__(daemon=True)
        self.ptr = ptr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = self.sock.getsockname()
        self.asked: list[bytes] = []

    def run(self) -> None:
        while True:
            try:
                query, client = self.sock.recvfrom(512)
            except OSError:
                return
            end = query.index(b"\0", 12) + 5  # the question: labels, root, type, class
            self.asked.append(query[12:end])
            if self.ptr is None:
                header = query[:2] + struct.pack(">HHHHH", 0x8183, 1, 0, 0, 0)
                self.sock.sendto(header + query[12:end], client)
                continue
            labels = b"".join(bytes([len(p)]) + p.encode() for p in self.ptr.split("."))
            answer = struct.pack(">HHHIH", 0xC00C, 12, 1, 600, len(labels) + 1) + labels + b"\0"
            header = query[:2] + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0)
            self.sock.sendto(header + query[12:end] + answer, client)

    def close(self) -> None:
        self.sock.close()


def test_container_names_itself_from_the_dns_server_not_from_etc_hosts():
    """The trial's failure: glibc's reverse lookup reads /etc/hosts first, where Docker writes
    the container id. 127.0.0.1 is `localhost` there; the container must take the DNS's name."""
    assert socket.gethostbyaddr("127.0.0.1")[0] != "botify-recommender-2.botify_default"
    server = PtrServer("botify-recommender-2.botify_default")
    server.start()
    try:
        name = gunicorn_conf.container_replica_name(
            hostname=lambda: "localhost",
            reverse_lookup=lambda address: dockerdns.reverse_name(address, [server.address]),
        )
    finally:
        server.close()
    assert name == "recommender-2"
    assert server.asked == [b"\x011\x010\x010\x03127\x07in-addr\x04arpa\x00\x00\x0c\x00\x01"]

    unknown = PtrServer(None)
    unknown.start()
    try:
        with pytest.raises(OSError, match="no PTR record"):
            dockerdns.reverse_name("127.0.0.1", [unknown.address])
    finally:
        unknown.close()


def test_nameservers_are_read_from_resolv_conf(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# Docker\nnameserver 127.0.0.11\nsearch x\noptions ndots:0\n")
    assert dockerdns.nameservers(str(conf)) == [("127.0.0.11", 53)]
    assert dockerdns.nameservers(str(tmp_path / "missing")) == []


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
