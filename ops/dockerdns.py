"""Who is this container? A reverse (PTR) lookup asked of the DNS servers in /etc/resolv.conf.

Under compose, Docker's embedded DNS (127.0.0.11) answers the PTR of a container's address with
`<project>-<service>-<n>.<network>`. `socket.gethostbyaddr` cannot be used for it: glibc reads
/etc/hosts first, where Docker maps the address to the container id. So the query goes to the
nameservers directly, over UDP, with the stdlib (a PTR question and its answer, RFC 1035).
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Sequence

PTR, IN = 12, 1


def nameservers(path: str = "/etc/resolv.conf") -> list[tuple[str, int]]:
    """The `nameserver` addresses of resolv.conf, port 53."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    return [
        (parts[1], 53) for parts in (line.split() for line in lines)
        if len(parts) >= 2 and parts[0] == "nameserver"
    ]  # fmt: skip


def reverse_name(
    address: str, servers: Sequence[tuple[str, int]] | None = None, timeout: float = 1.0
) -> str:
    """The PTR name of an IPv4 `address`, without the trailing dot; OSError if none answers."""
    octets = socket.inet_aton(address)[::-1]  # OSError for anything but IPv4
    qname = b"".join(bytes([len(str(o))]) + str(o).encode() for o in octets)
    qname += b"\x07in-addr\x04arpa\x00"
    ident = int.from_bytes(os.urandom(2), "big")
    query = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", PTR, IN)
    last = OSError(f"no nameserver to ask for {address}")
    for server in servers if servers is not None else nameservers():
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(timeout)
                sock.sendto(query, server)
                while True:
                    reply, _ = sock.recvfrom(4096)
                    if reply[:2] == query[:2]:
                        break
            name = _answer(reply)
        except (OSError, ValueError, IndexError, struct.error) as error:
            last = OSError(f"{server[0]}: {error}")
            continue
        if name:
            return name
        last = OSError(f"{server[0]} has no PTR record for {address}")
    raise last


def _answer(reply: bytes) -> str | None:
    _, flags, questions, answers = struct.unpack(">HHHH", reply[:8])
    if flags & 0x000F:  # RCODE: NXDOMAIN, SERVFAIL, ...
        return None
    at = 12
    for _ in range(questions):
        _, at = _name(reply, at)
        at += 4
    for _ in range(answers):
        _, at = _name(reply, at)
        kind, _, _, length = struct.unpack(">HHIH", reply[at : at + 10])
        at += 10
        if kind == PTR:
            return _name(reply, at)[0]
        at += length
    return None


def _name(packet: bytes, at: int) -> tuple[str, int]:
    """A (possibly compressed) domain name at `at` -> (name, offset after it)."""
    labels: list[str] = []
    end = None
    for _ in range(128):  # a loop of pointers is malformed
        length = packet[at]
        if length >= 0xC0:
            end = at + 2 if end is None else end
            at = ((length & 0x3F) << 8) | packet[at + 1]
            continue
        if length == 0:
            return ".".join(labels), (at + 1 if end is None else end)
        labels.append(packet[at + 1 : at + 1 + length].decode("ascii"))
        at += 1 + length
    raise ValueError("malformed DNS name")
