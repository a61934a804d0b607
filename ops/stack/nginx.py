"""The balancer of the local stack: deploy/nginx.conf (the compose file's config) rendered for
this machine, and where the nginx binary is."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from ops.stack.process import StackError

NGINX_TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
_PLACEHOLDER = re.compile(r"\$\{(BOTIFY_[A-Z0-9_]+)\}")


def render_nginx_conf(template: str, values: Mapping[str, str]) -> str:
    """Fill the `${BOTIFY_*}` placeholders, as the nginx image's envsubst step does in compose.

    Every placeholder must have a value (envsubst would leave it in place and nginx fail later).
    """
    missing = sorted(set(_PLACEHOLDER.findall(template)) - set(values))
    if missing:
        raise StackError(f"no value for nginx.conf placeholders {missing}")
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


def upstream_servers(addresses: list[str]) -> str:
    """The BOTIFY_UPSTREAM value for fixed replica addresses (`host:port`)."""
    # max_fails=1: one refused connection takes a dead replica out for fail_timeout, then nginx
    # tries it again (a restarted replica on the same port comes back by itself).
    return " ".join(f"server {a} max_fails=1 fail_timeout=2s;" for a in addresses)


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None
