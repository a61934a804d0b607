"""User affinity: which requests the balancer must keep on one replica.

A user's events must land in one replica's log file, in order, on both API paths. The balancer
(deploy/nginx.conf) hashes every request by a shard key: `/next/<user>` and `/last/<user>` by the
user's shard, `/batch/<shard>` by its shard. The shard is `user mod 100`, written with two digits:
the last two decimal digits of the user id, which nginx can read off the path with a regex (it
cannot compute a modulo), so both paths agree without any state. A batch may only carry users of
its shard (the service checks it); a client groups its live sessions by shard.
"""

from __future__ import annotations

import re

SHARDS = 100  # = 10**2: the shard is the id's last two decimal digits (nginx reads them)
_SHARD = re.compile(r"[0-9]{2}")


def shard_of(user: int) -> int:
    return int(user) % SHARDS


def shard_name(user: int) -> str:
    """The shard key as it appears in `/batch/<shard>` and in nginx's hash: two digits."""
    return f"{shard_of(user):02d}"


def parse_shard(text: str) -> int | None:
    """The shard of a `/batch/<shard>` path segment; None unless exactly two ASCII digits."""
    return int(text) if _SHARD.fullmatch(text) else None
