"""gunicorn settings for a Botify replica: `gunicorn -c python:ops.gunicorn_conf 'botify.app:create_app()'`.

The same module runs the Docker image (Dockerfile CMD) and the local stack (ops/stack/).
Deployment specifics stay on the command line (`--bind`, `--workers`, or WEB_CONCURRENCY); this
file holds the policy:

- `preload_app`: the app (catalog, experiments) is built once in the master and shared by the
  forked workers copy-on-write, not rebuilt per worker.
- gthread workers (`ops.worker.BufferedThreadWorker`): HTTP keep-alive (a sync worker closes
  every connection) while a worker waits on Redis in one thread and parses the next request in
  another; a thread never waits for a request that is still arriving (it goes back to the event
  loop until it is whole), so slow or half-finished clients cannot hold the threads, and
  gunicorn's protocol errors are JSON.
  Measured in docs/stack.md.
- TCP_NODELAY: gunicorn sets it on the listening socket and Linux copies it to every accepted one,
  so a response written in two pieces is not held back 40 ms by Nagle + delayed ACK; the keep-alive
  latency test (tests/stack/) guards it.
- graceful shutdown: SIGTERM lets requests in flight finish within `graceful_timeout` (shorter than
  Docker's 10 s stop grace period); `worker_exit` then closes the app's event log.
- access log off (every request is already an event line); errors to stderr.
- no control socket (gunicorn >= 25.1): its default path is one per user ($HOME/.gunicorn), so
  replicas on one machine would take each other's, and the image's user has no home to write to.

In a container the replica names itself: with BOTIFY_LOG_ROOT set and no BOTIFY_LOG_DIR, its log
folder is `<BOTIFY_LOG_ROOT>/<replica name>` (one folder per replica in the shared log volume) and the
name is also BOTIFY_REPLICA, unless set. See `container_replica_name`.
"""

from __future__ import annotations

import os
import re
import socket

from ops import dockerdns

# One BLAS thread per worker: a replica's worker scores one request's small matrix products at a
# time, and BLAS threads would only fight the other workers and replicas for the cores. Set before
# the app (and numpy) is imported by the master.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

worker_class = "ops.worker.BufferedThreadWorker"
threads = 4
preload_app = True
# Longer than nginx's upstream keepalive_timeout (60 s), so nginx, not the replica, closes an idle
# connection and never sends a request on a connection the replica is closing.
keepalive = 65
timeout = 30
graceful_timeout = 8
accesslog = None
errorlog = "-"
loglevel = os.environ.get("BOTIFY_GUNICORN_LOGLEVEL", "info")
proc_name = "botify"
# The heartbeat file on tmpfs: a container's overlay filesystem can stall it (gunicorn's docs).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
backlog = 2048
control_socket_disable = True


def container_replica_name(
    service: str = "recommender",
    hostname=socket.gethostname,
    reverse_lookup=dockerdns.reverse_name,
    address_of=socket.gethostbyname,
) -> str:
    """This container's compose name (`recommender-2`), or its hostname when that is unknown.

    Docker's embedded DNS answers the reverse lookup of a container's address with
    `<project>-<service>-<n>.<network>`; the hostname alone is the container id, and so is what
    `socket.gethostbyaddr` answers (from /etc/hosts), hence `ops.dockerdns`.
    """
    host = hostname()
    try:
        fqdn = reverse_lookup(address_of(host))
    except OSError:
        return host
    match = re.search(rf"(?:^|[-_]){re.escape(service)}[-_](\d+)(?:\.|$)", fqdn)
    return f"{service}-{match.group(1)}" if match else host


def _name_this_replica(environ=os.environ) -> None:
    root = environ.get("BOTIFY_LOG_ROOT")
    if not root or environ.get("BOTIFY_LOG_DIR"):
        return
    name = environ.get("BOTIFY_REPLICA") or container_replica_name()
    environ.setdefault("BOTIFY_REPLICA", name)
    environ["BOTIFY_LOG_DIR"] = os.path.join(root, name)


_name_this_replica()


def worker_exit(server, worker) -> None:
    """Close the worker's event log on a normal exit (lines are already written; see botify.event_log)."""
    # The Flask app keeps its Service in app.extensions["botify"] (botify/app.py); its EventLog
    # also closes at exit through atexit, this just does it before gunicorn's own teardown.
    service = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("botify")
    events = getattr(service, "events", None)
    if events is not None:
        events.close()
