"""The Botify stack without Docker: Redis, N gunicorn replicas and nginx in front, one command
(`python -m ops.stack up`, ops/stack/cli.py), or one context manager (`LocalStack`).

- `local`: `LocalStack`, the stack's parts, their start-up, readiness and supervision;
- `process`: one supervised child process (its process group) and the probes used on it;
- `supervise`: the restart policy (back-off, giving up);
- `nginx`: deploy/nginx.conf rendered for this machine, and the nginx binary;
- `cli`: the command line.
"""

from ops.stack.local import GUNICORN_TARGET, LocalStack
from ops.stack.nginx import NGINX_TEMPLATE, find_nginx, render_nginx_conf, upstream_servers
from ops.stack.process import StackError
from ops.stack.supervise import GIVE_UP_AFTER, RESTART_WINDOW, SUPERVISE_EVERY

__all__ = [
    "GIVE_UP_AFTER",
    "GUNICORN_TARGET",
    "NGINX_TEMPLATE",
    "RESTART_WINDOW",
    "SUPERVISE_EVERY",
    "LocalStack",
    "StackError",
    "find_nginx",
    "render_nginx_conf",
    "upstream_servers",
]
